"""Human labels (with units) of every value a person reads: settings, parameters, the run.

The one place they are written; run.out, the report and the ChimeraX script take them from here.
"""

from __future__ import annotations

#: EstimateSettings fields, in the order the report lists them (warnings are shown apart)
SETTING_LABELS = {
    "mode": "Mode",
    "lowpass_angstrom": "Low-pass (Å)",
    "kernel_radius_angstrom": "Kernel radius (Å)",
    "kernel_voxels": "Kernel voxels",
    "tau": "Quantile τ",
    "tile_angstrom": "Reference tile edge (Å)",
    "reference_quantile": "Reference tile quantile",
    "working_pixel_angstrom": "Working pixel (Å)",
    "working_shape": "Working grid (voxels)",
    "solvent_region": "Solvent fitted in",
    "solvent_mean": "Solvent mean (low-passed)",
    "solvent_sd": "Solvent sd (low-passed)",
    "solvent_fraction": "Solvent fraction",
    "noise_floor": "Noise floor",
    "noise_floor_source": "Noise floor from",
    "noise_floor_spread": "Noise floor 5–95 % (× median)",
    "noise_floor_reason": "Noise estimate",
    "noise_bias_decay": "Noise-bias decay k",
    "noise_bias_fitted": "Decay fitted on the map",
    "reference_value": "Full-occupancy reference",
    "reference_position_angstrom": "Reference tile centre (x, y, z Å)",
    "reference_is_joint": "Joint reference (--joint)",
    "no_data_fraction": "Box without data (masked, flattened)",
    "measurability": "Measurable",
}

#: the short labels of a class page's facts (a narrow column): settings, the report's view, the result
CLASS_FACT_LABELS = {
    "solvent_region": "Solvent fitted in",
    "solvent_mean": "Solvent mean",
    "solvent_sd": "Solvent sd (low-pass)",
    "noise_sd": "Noise sd (full map)",
    "noise_floor": "Noise floor",
    "noise_floor_source": "  measured from",
    "reference_value": "Reference",
    "reference_position_angstrom": "Reference at (Å)",
    "molecule_voxels": "Molecule voxels",
    "contour_level": "ChimeraX level",
    "seconds": "Time",
}

#: the run's parameters as the report's first page lists them (resolved lengths included)
PARAMETER_LABELS = {
    "mode": "Mode",
    "lowpass": "Low-pass (Å)",
    "kernel_radius": "Kernel radius (Å)",
    "tile": "Reference tile (Å)",
    "amplify": "Amplify γ",
    "attenuate": "Attenuate γ",
    "sigmoid": "Sigmoid γ",
    "pivot": "Pivot",
    "scale_limit": "Scale limit",
    "max_gain": "Maximum gain",
    "exclude_solvent": "Exclude solvent",
    "joint": "Joint normalisation",
    "mask": "Solvent mask",
    "mask_extend": "Region mask extension (Å)",
    "mask_soft_edge": "Region mask soft edge (Å)",
    "region_difference": "Region: least occupancy difference",
    "threads": "Threads",
}

#: what the report's first page says about the run, in its order
RUN_LABELS = {
    "input": "Input",
    "input_kind": "Input type",
    "model_path": "Model star",
    "relion_version": "RELION version",
    "job_dir": "Job directory",
    "command_line": "Command line",
    "pixel_size": "Pixel size (Å)",
    "joint_reference": "Joint reference",
}

"""What a run shows a person: the PDF logfile and the ChimeraX script.

The job hands over small summaries, never full maps: :func:`summarise_class` takes the central
slices and histograms of one class right after it is processed, so the report costs no memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core import ScaleEstimate


@dataclass
class ClassSummary:
    """Everything the report shows of one class (small arrays only)."""

    number: int  # RELION class number (1-based)
    input_path: str  # input map, relative to the project directory
    scale_path: str  # outputs, relative to the project directory
    confidence_path: str
    equalised_path: str
    distribution: float | None  # _rlnClassDistribution (None for a lone map)
    resolution: float | None  # _rlnEstimatedResolution, Å
    pixel_size: float
    # central slices (z, y, x planes through the box centre) of input, scale and equalised maps
    input_slices: list[np.ndarray] = field(repr=False, default_factory=list)
    scale_slices: list[np.ndarray] = field(repr=False, default_factory=list)
    equalised_slices: list[np.ndarray] = field(repr=False, default_factory=list)
    # histogram of the low-passed map with the fitted solvent model (from ScaleEstimate.solvent)
    histogram_centres: np.ndarray = field(repr=False, default=None)
    histogram_counts: np.ndarray = field(repr=False, default=None)
    solvent_counts: np.ndarray = field(repr=False, default=None)
    confidence_curve: np.ndarray = field(repr=False, default=None)
    # histogram of the scale inside the molecule (confidence >= 0.5): counts over 50 bins on [0, 1]
    scale_histogram: np.ndarray = field(repr=False, default=None)
    statistics: dict = field(default_factory=dict)  # e.g. scale_median, scale_p05, scale_p95, molecule_voxels
    settings: dict = field(default_factory=dict)  # ScaleEstimate.settings
    seconds: float = 0.0


def central_slices(volume: np.ndarray) -> list[np.ndarray]:
    """Three central planes of a (z, y, x) map: the xy plane at the middle z, then xz, then yz."""
    z, y, x = (n // 2 for n in volume.shape)
    return [np.array(volume[z], np.float32), np.array(volume[:, y], np.float32), np.array(volume[:, :, x], np.float32)]


def summarise_class(
    number: int,
    volume: np.ndarray,
    estimate: ScaleEstimate,
    equalised: np.ndarray,
    statistics: dict,
    *,
    input_path: str,
    scale_path: str,
    confidence_path: str,
    equalised_path: str,
    distribution: float | None,
    resolution: float | None,
    pixel_size: float,
    seconds: float = 0.0,
) -> ClassSummary:
    """The small part of one processed class that the report needs (call right after the class)."""
    solvent = estimate.solvent
    inside = estimate.scale[estimate.confidence >= 0.5]
    scale_histogram, _ = np.histogram(inside, bins=50, range=(0.0, 1.0))
    return ClassSummary(
        number=number, input_path=input_path, scale_path=scale_path, confidence_path=confidence_path,
        equalised_path=equalised_path, distribution=distribution, resolution=resolution, pixel_size=pixel_size,
        input_slices=central_slices(volume), scale_slices=central_slices(estimate.scale),
        equalised_slices=central_slices(equalised),
        histogram_centres=solvent.centres, histogram_counts=solvent.counts,
        solvent_counts=solvent.gaussian_counts(), confidence_curve=solvent.confidence_curve,
        scale_histogram=scale_histogram, statistics=dict(statistics), settings=dict(estimate.settings),
        seconds=seconds,
    )


def write_report(job_dir, run_info: dict, classes: list[ClassSummary], joint: bool = False) -> list:
    """Write ``logfile.pdf`` and ``occupy.cxc`` into ``job_dir``; return the paths written.

    ``run_info``: input description, RELION version, parameters and derived settings (flat dict).
    (Stub: the report is being written in report/pdf.py and report/chimerax.py.)
    """
    raise NotImplementedError("the report is not written yet")

"""Checks made before a run writes anything: the job directory's name, inputs kept apart from outputs,
the low-pass against the box.

Each fails with one line naming the option or file (an :class:`~occupy_relion.errors.InputError`).
Map headers and data are checked where they are read (``mapio.py``, ``grid.py``); the outputs are
staged (``outputs.py``), so a check that can only happen while reading data still leaves no output.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core import ScaleParameters
from ..errors import InputError
from ..relion.inputs import Inputs
from .options import JobOptions

#: the largest low-pass, as a share of the box's shortest side, that leaves solvent to fit the noise in
#: (measured on a 224 Å box: 80 Å works, 150 Å leaves 57 solvent voxels)
MAX_LOWPASS_OF_BOX = 0.5


def job_name_problem(output_dir: str) -> str | None:
    """Why RELION could not use ``--o`` as a job directory (white space in it), or None."""
    if any(c.isspace() for c in output_dir):
        return (f"--o {output_dir!r}: a job directory with white space in its name; RELION cannot register "
                "outputs whose names contain a space (use e.g. External/job099/)")
    return None


def input_paths(options: JobOptions, inputs: Inputs) -> list[str]:
    """Every file the run reads (options, the model.star, the class and half maps)."""
    paths = [p for p in (options.in_parts, options.in_3dref, options.in_mask, options.model, inputs.model_path) if p]
    for cls in inputs.classes:
        paths.append(cls.map_path)
        paths.extend(cls.half_maps or ())
    return paths


class InputInJobDirectory(InputError):
    """An input lies inside the job directory: the failed run must not clean up the earlier outputs
    (the input may be one of them)."""


def check_inputs_outside(job_dir: Path, options: JobOptions, inputs: Inputs) -> None:
    """No input may be inside the job directory: its outputs (or a failed run's clean-up) would replace it."""
    job = os.path.realpath(job_dir)
    for path in input_paths(options, inputs):
        real = os.path.realpath(path)
        if real == job or real.startswith(job + os.sep):
            raise InputInJobDirectory(f"{path}: an input inside the job directory {job_dir}; the job's outputs would "
                             "replace it (give it from another job, or run into a new --o)")


def check_lowpass(options: JobOptions, resolved: ScaleParameters, shape: tuple[int, int, int],
                  pixel_size: float) -> None:
    """The low-pass must leave solvent to measure; names --lowpass (or the box when it was derived)."""
    box = min(shape) * pixel_size
    largest = MAX_LOWPASS_OF_BOX * box
    if resolved.lowpass is None or resolved.lowpass <= largest:
        return
    if options.lowpass is not None:
        raise InputError(f"--lowpass: {options.lowpass:g} Å is too coarse for the maps' {box:g} Å box "
                         f"(at most {largest:.3g} Å)")
    raise InputError(f"the maps' box ({box:g} Å) is too small for the derived low-pass of {resolved.lowpass:g} Å; "
                     f"give --lowpass of at most {largest:.3g} Å")

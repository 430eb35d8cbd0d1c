"""What a run shows a person: the PDF logfile and the ChimeraX script.

The job hands over small summaries, never full maps: :func:`summarise_class` takes the central
slices and histograms of one class right after it is processed, so the report costs no memory.
:func:`write_report` then writes ``logfile.pdf`` (``report/pdf.py``) and ``occupy.cxc``
(``report/chimerax.py``) into the job directory, both atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..core import ScaleEstimate, molecule_scale
from ..core.solvent import flattened_region

__all__ = ["CONTOUR_SIGMAS", "ClassSummary", "central_slices", "summarise_class", "write_report",
           "LOGFILE_NAME", "SCRIPT_NAME"]

LOGFILE_NAME = "logfile.pdf"
SCRIPT_NAME = "occupy.cxc"

#: ChimeraX contour of every class: solvent mean + this many solvent noise sd of its own map
CONTOUR_SIGMAS = 3.0

#: the scale percentiles kept for box plots
SCALE_PERCENTILES = (5, 25, 50, 75, 95)

#: at most this many voxels are sampled to measure the solvent noise of the full map
_NOISE_SAMPLE = 262_144


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
    # histogram of the scale inside the molecule (core.molecule_scale): counts over 50 bins on [0, 1]
    scale_histogram: np.ndarray = field(repr=False, default=None)
    statistics: dict = field(default_factory=dict)  # e.g. scale_median, scale_p05, scale_p95, molecule_voxels
    settings: dict = field(default_factory=dict)  # ScaleEstimate.settings
    seconds: float = 0.0
    # filled by summarise_class (optional when a summary is built by hand):
    confidence_slices: list[np.ndarray] = field(repr=False, default_factory=list)  # same planes, confidence
    box_shape: tuple[int, int, int] | None = None  # (z, y, x) voxels of the input map
    scale_percentiles: np.ndarray | None = field(repr=False, default=None)  # at SCALE_PERCENTILES, in the molecule
    noise_sd: float | None = None  # sd of the solvent noise of the full-resolution input map
    contour_level: float | None = None  # ChimeraX level: solvent mean + CONTOUR_SIGMAS × noise_sd


def central_slices(volume: np.ndarray) -> list[np.ndarray]:
    """Three central planes of a (z, y, x) map: the xy plane at the middle z, then xz, then yz."""
    z, y, x = (n // 2 for n in volume.shape)
    return [np.array(volume[z], np.float32), np.array(volume[:, y], np.float32), np.array(volume[:, :, x], np.float32)]


def solvent_noise_sd(volume: np.ndarray, confidence: np.ndarray, mean: float | None = None) -> float | None:
    """Robust sd of the full-resolution map where it is solvent (confidence < 0.5).

    Taken from below the solvent mean only (for a Gaussian, 31.73 % of its lower half lies below
    mean − sd), so density the confidence missed does not inflate it; ``mean`` is the fitted solvent
    mean (default: the median of the solvent voxels).  Voxels flattened to one value (masked solvent)
    are left out.  A strided sample of at most ``_NOISE_SAMPLE`` voxels keeps it cheap.  None if too
    few voxels.
    """
    step = max(1, volume.size // _NOISE_SAMPLE)
    values = np.asarray(volume).ravel()[::step]
    solvent = np.asarray(confidence).ravel()[::step] < 0.5
    flat = flattened_region(values)
    if flat is not None:
        solvent &= ~flat
    values = values[solvent].astype(np.float64)
    if values.size < 100:
        return None
    centre = float(np.median(values)) if mean is None else float(mean)
    below = values[values <= centre]
    if below.size < 50:
        return None
    sd = centre - float(np.quantile(below, 0.3173))
    return sd if sd > 0 and np.isfinite(sd) else None


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
    inside = molecule_scale(estimate.scale, estimate.confidence)  # the molecule of the statistics table
    scale_histogram, _ = np.histogram(inside, bins=50, range=(0.0, 1.0))
    percentiles = np.percentile(inside, SCALE_PERCENTILES).astype(np.float64) if inside.size else None
    del inside
    solvent_mean = float(estimate.settings.get("solvent_mean", solvent.mean))
    noise_sd = solvent_noise_sd(volume, estimate.confidence, solvent_mean)
    level = None if noise_sd is None else solvent_mean + CONTOUR_SIGMAS * noise_sd
    return ClassSummary(
        number=number, input_path=input_path, scale_path=scale_path, confidence_path=confidence_path,
        equalised_path=equalised_path, distribution=distribution, resolution=resolution, pixel_size=pixel_size,
        input_slices=central_slices(volume), scale_slices=central_slices(estimate.scale),
        equalised_slices=central_slices(equalised),
        histogram_centres=solvent.centres, histogram_counts=solvent.counts,
        solvent_counts=solvent.gaussian_counts(), confidence_curve=solvent.confidence_curve,
        scale_histogram=scale_histogram, statistics=dict(statistics), settings=dict(estimate.settings),
        seconds=seconds, confidence_slices=central_slices(estimate.confidence),
        box_shape=tuple(int(n) for n in volume.shape), scale_percentiles=percentiles,
        noise_sd=noise_sd, contour_level=level,
    )


def write_report(
    job_dir,
    run_info: dict,
    classes: list[ClassSummary],
    joint: bool = False,
    *,
    project_dir=None,
) -> list[Path]:
    """Write ``logfile.pdf`` and ``occupy.cxc`` into ``job_dir``; return the paths written.

    ``run_info``: what the first page lists under "Run", in its order (input, RELION version,
    command line, parameters ...); a value that is itself a dict becomes its own section.
    ``project_dir``: what the summaries' paths are relative to (default: the current directory,
    which is the project directory when RELION runs the job).

    Both files are written to hidden temporary files first and moved into place only when both are
    complete: an exception leaves no partial file (and any earlier report untouched).
    """
    from .chimerax import chimerax_script  # matplotlib is imported only when a report is written
    from .pdf import render_pdf

    job_dir = Path(job_dir)
    project_dir = Path.cwd() if project_dir is None else Path(project_dir)
    classes = sorted(classes, key=lambda c: c.number)
    targets = [job_dir / LOGFILE_NAME, job_dir / SCRIPT_NAME]
    with atomic_path(targets[0]) as pdf_path, atomic_path(targets[1]) as script_path:
        render_pdf(pdf_path, run_info, classes, joint=joint, job_dir=job_dir)
        script_path.write_text(chimerax_script(classes, job_dir=job_dir, project_dir=project_dir), encoding="utf-8")
    return targets

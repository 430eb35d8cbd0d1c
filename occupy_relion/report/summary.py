"""The summary step: every number and small array the report shows of a class, computed once.

Called right after a class is processed, while its full maps are in memory; the report then only
draws what :func:`summarise_class` returns (a :class:`~occupy_relion.result.ClassView`).  "The
molecule" is the core's own (:func:`~occupy_relion.core.molecule_scale`), and the solvent histogram
is the one the core fitted (:class:`~occupy_relion.core.SolventModel`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np

from ..core import EstimateSettings, ScaleEstimate, molecule_scale
from ..core.solvent import SolventModel, flattened_region
from ..labels import SETTING_LABELS
from ..regions import RegionAnalysis
from ..result import CentralSlices, ClassView, ContourBasis, RegionsView, ScaleHistogram, SolventHistogram

#: ChimeraX contour of every class: solvent mean + this many solvent noise sd of its own map
CONTOUR_SIGMAS = 3.0

#: the scale percentiles kept for box plots
SCALE_PERCENTILES = (5, 25, 50, 75, 95)

#: bins of the scale histogram on [0, 1]
SCALE_BINS = 50

#: display range of the density slices (percentiles of the three slices)
GREY_PERCENTILES = (0.5, 99.8)

#: confidence from which a voxel belongs to the molecule (as in core.molecule_scale)
MOLECULE_CONFIDENCE = 0.5

#: at most this many voxels are sampled to measure the solvent noise of the full map
_NOISE_SAMPLE = 262_144

#: for a Gaussian, this share of its lower half lies below mean − 1 sd
_LOWER_HALF_BELOW_ONE_SD = 0.3173


def central_slices(volume: np.ndarray) -> tuple[np.ndarray, ...]:
    """Three central planes of a (z, y, x) map: the xy plane at the middle z, then xz, then yz."""
    z, y, x = (n // 2 for n in volume.shape)
    return (np.array(volume[z], np.float32), np.array(volume[:, y], np.float32),
            np.array(volume[:, :, x], np.float32))


def grey_range(slices: tuple[np.ndarray, ...]) -> tuple[float, float]:
    """Display range of density slices: the :data:`GREY_PERCENTILES` of their values."""
    values = np.concatenate([np.asarray(s, np.float32).ravel() for s in slices])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, GREY_PERCENTILES)
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
        if not hi > lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def solvent_noise_sd(volume: np.ndarray, confidence: np.ndarray, mean: float | None = None) -> float | None:
    """Robust sd of the full-resolution map where it is solvent (confidence < 0.5).

    Taken from below the solvent mean only (as the core's first solvent guess does), so density the
    confidence missed does not inflate it; ``mean`` is the fitted solvent mean (default: the median of
    the solvent voxels).  Voxels flattened to one value (masked solvent) are left out.  A strided
    sample of at most ``_NOISE_SAMPLE`` voxels keeps it cheap.  None if too few voxels.
    """
    step = max(1, volume.size // _NOISE_SAMPLE)
    values = np.asarray(volume).ravel()[::step]
    solvent = np.asarray(confidence).ravel()[::step] < MOLECULE_CONFIDENCE
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
    sd = centre - float(np.quantile(below, _LOWER_HALF_BELOW_ONE_SD))
    return sd if sd > 0 and np.isfinite(sd) else None


def solvent_histogram(solvent: SolventModel) -> SolventHistogram:
    """The fitted histogram, its Gaussian and the confidence curve on an axis in solvent sd."""
    edges = (np.asarray(solvent.edges, np.float64) - solvent.mean) / solvent.sd
    centres = 0.5 * (edges[1:] + edges[:-1])
    curve = np.asarray(solvent.confidence_curve, np.float64)
    above = np.nonzero(curve >= MOLECULE_CONFIDENCE)[0]
    return SolventHistogram(edges=edges, centres=centres, counts=np.asarray(solvent.counts, np.float64),
                            model=np.asarray(solvent.gaussian_counts(), np.float64), confidence=curve,
                            molecule_edge=float(centres[above[0]]) if above.size else None)


def scale_histogram(scale: np.ndarray, confidence: np.ndarray) -> ScaleHistogram:
    """The scale of the molecule's voxels: percent per bin on [0, 1] and the box-plot percentiles."""
    inside = molecule_scale(scale, confidence)
    counts, edges = np.histogram(inside, bins=SCALE_BINS, range=(0.0, 1.0))
    percent = 100 * counts / counts.sum() if counts.sum() else np.zeros(SCALE_BINS)
    percentiles = np.percentile(inside, SCALE_PERCENTILES).astype(np.float64) if inside.size else None
    return ScaleHistogram(edges=edges, percent=percent, percentiles=percentiles)


def contour(noise_sd: float | None, solvent_mean: float, lowpassed_sd: float) -> tuple[float, ContourBasis]:
    """The ChimeraX level: solvent mean + :data:`CONTOUR_SIGMAS` noise sd (low-passed sd without one)."""
    if noise_sd is not None:
        return solvent_mean + CONTOUR_SIGMAS * noise_sd, "solvent noise sd"
    return solvent_mean + CONTOUR_SIGMAS * lowpassed_sd, "low-passed solvent sd"


def summarise_class(volume: np.ndarray, estimate: ScaleEstimate, equalised: np.ndarray,
                    molecule_voxels: int) -> ClassView:
    """The report's view of one processed class (call while its full maps are in memory)."""
    settings = estimate.settings
    slices = CentralSlices(input=central_slices(volume), scale=central_slices(estimate.scale),
                           confidence=central_slices(estimate.confidence), equalised=central_slices(equalised))
    noise_sd = solvent_noise_sd(volume, estimate.confidence, settings.solvent_mean)
    level, basis = contour(noise_sd, settings.solvent_mean, settings.solvent_sd)
    return ClassView(
        box_shape=(int(volume.shape[0]), int(volume.shape[1]), int(volume.shape[2])),
        slices=slices, input_range=grey_range(slices.input), equalised_range=grey_range(slices.equalised),
        solvent=solvent_histogram(estimate.solvent), scale=scale_histogram(estimate.scale, estimate.confidence),
        molecule_fraction=molecule_voxels / float(volume.size), noise_sd=noise_sd,
        contour_level=level, contour_basis=basis,
    )


def _same_value(a: object, b: object) -> bool:
    """Whether two settings agree (numbers to 1e-6 relative, sequences element-wise)."""
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, Real) and isinstance(b, Real) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=0.0)
    return a == b


def shared_settings(settings: Sequence[EstimateSettings]) -> tuple[list[tuple[str, object]], list[str]]:
    """The settings every class shares ((name, value), in :data:`~occupy_relion.labels.SETTING_LABELS`
    order) and the names of those that differ between classes.
    """
    common: list[tuple[str, object]] = []
    varying: list[str] = []
    for name in SETTING_LABELS:
        values = [getattr(s, name) for s in settings]
        if all(_same_value(values[0], v) for v in values[1:]):
            common.append((name, values[0]))
        else:
            varying.append(name)
    return common, varying


def regions_view(analysis: RegionAnalysis, scale: Mapping[int, np.ndarray]) -> RegionsView:
    """What the report draws of the regions; ``scale``: class → scale map on the analysis grid (the
    same maps :func:`~occupy_relion.regions.analyse_regions` was given)."""
    return RegionsView(classes=analysis.classes)

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
from scipy import ndimage

from ..core import EstimateSettings, ScaleEstimate
from ..core.solvent import SolventModel, flattened_region
from ..labels import SETTING_LABELS
from ..regions import RegionAnalysis
from ..result import (
    CentralSlices,
    ClassResult,
    ClassView,
    ContourBasis,
    Plane,
    RegionsSlice,
    RegionsView,
    ScaleHistogram,
    SolventHistogram,
)

#: ChimeraX contour of every class: solvent mean + this many solvent noise sd of its own map
CONTOUR_SIGMAS = 3.0

#: with a region analysis, the ChimeraX contour of every class: its solvent mean + this share of the
#: density of full occupancy on the common reference (the analysis' full level × that reference), so
#: every class is drawn by one rule, a half-occupied domain still shows and the noise stays hidden
CONTOUR_FRACTION = 0.3

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


def solvent_noise_sd(volume: np.ndarray, confidence: np.ndarray, mean: float | None = None,
                     no_data: np.ndarray | None = None) -> float | None:
    """Robust sd of the full-resolution map where it is solvent (confidence < 0.5).

    Taken from below the solvent mean only (as the core's first solvent guess does), so density the
    confidence missed does not inflate it; ``mean`` is the fitted solvent mean (default: the median of
    the solvent voxels).  Voxels flattened to one value (masked solvent) are left out, and so are the
    voxels without data of ``no_data`` (the core's working-grid map of them, e.g. a soft mask's
    fall-off, whose damped noise would put the contour into the noise).  A strided sample of at most
    ``_NOISE_SAMPLE`` voxels keeps it cheap.  None if too few voxels.
    """
    step = max(1, volume.size // _NOISE_SAMPLE)
    values = np.asarray(volume).ravel()[::step]
    solvent = np.asarray(confidence).ravel()[::step] < MOLECULE_CONFIDENCE
    flat = flattened_region(values)
    if flat is not None:
        solvent &= ~flat
    if no_data is not None and no_data.any():
        # the working-grid voxel of every sampled voxel (the grids cover the same box), one voxel wider
        wide = ndimage.binary_dilation(no_data, iterations=1)
        index = np.unravel_index(np.arange(0, volume.size, step), volume.shape)
        cell = tuple(np.minimum((i * (n / s)).astype(np.intp), n - 1)
                     for i, n, s in zip(index, wide.shape, volume.shape))
        solvent &= ~wide[cell]
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


def scale_histogram(inside: np.ndarray) -> ScaleHistogram:
    """The scale of the molecule's voxels (``inside``, as :func:`~occupy_relion.core.molecule_scale`
    selects them): percent per bin on [0, 1] (above 1 counts in the last bin) and the box-plot
    percentiles (of the scale itself)."""
    # the scale is linear and may exceed 1 a little: shown in the last bin (for display only)
    counts, edges = np.histogram(np.minimum(inside, 1), bins=SCALE_BINS, range=(0.0, 1.0))
    percent = 100 * counts / counts.sum() if counts.sum() else np.zeros(SCALE_BINS)
    percentiles = np.percentile(inside, SCALE_PERCENTILES).astype(np.float64) if inside.size else None
    return ScaleHistogram(edges=edges, percent=percent, percentiles=percentiles)


def contour(noise_sd: float | None, solvent_mean: float, lowpassed_sd: float) -> tuple[float, ContourBasis]:
    """The ChimeraX level: solvent mean + :data:`CONTOUR_SIGMAS` noise sd (low-passed sd without one)."""
    if noise_sd is not None:
        return solvent_mean + CONTOUR_SIGMAS * noise_sd, "solvent noise sd"
    return solvent_mean + CONTOUR_SIGMAS * lowpassed_sd, "low-passed solvent sd"


def common_reference(classes: Sequence[ClassResult]) -> float:
    """The reference the region analysis divided every class by: the joint one (``core.joint_reference``,
    the largest of the classes' own references), whether or not the classes' own maps used it."""
    return max(float(c.settings.reference_value) for c in classes)


def occupancy_contour(c: ClassResult, classes: Sequence[ClassResult], full_level: float) -> float:
    """The ChimeraX level of class ``c`` with a region analysis: its solvent mean +
    :data:`CONTOUR_FRACTION` × the density of full occupancy on the common reference."""
    return float(c.settings.solvent_mean) + CONTOUR_FRACTION * float(full_level) * common_reference(classes)


def summarise_class(volume: np.ndarray, estimate: ScaleEstimate, equalised: np.ndarray,
                    molecule: np.ndarray) -> ClassView:
    """The report's view of one processed class (call while its full maps are in memory); ``molecule``:
    the scale of the molecule's voxels (:func:`~occupy_relion.core.molecule_scale`, made once a class)."""
    settings = estimate.settings
    slices = CentralSlices(input=central_slices(volume), scale=central_slices(estimate.scale),
                           confidence=central_slices(estimate.confidence), equalised=central_slices(equalised))
    noise_sd = solvent_noise_sd(volume, estimate.confidence, settings.solvent_mean,
                                estimate.no_data.grid if estimate.no_data is not None else None)
    level, basis = contour(noise_sd, settings.solvent_mean, settings.solvent_sd)
    return ClassView(
        box_shape=(int(volume.shape[0]), int(volume.shape[1]), int(volume.shape[2])),
        slices=slices, input_range=grey_range(slices.input), equalised_range=grey_range(slices.equalised),
        solvent=solvent_histogram(estimate.solvent), scale=scale_histogram(molecule),
        molecule_fraction=molecule.size / float(volume.size), noise_sd=noise_sd,
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


#: the planes of a (z, y, x) map: name, the axis cut (0 = z) and the window's (horizontal, vertical) axes
_PLANES: tuple[tuple[Plane, int, tuple[int, int]], ...] = (("xy", 0, (2, 1)), ("xz", 1, (2, 0)), ("yz", 2, (1, 0)))

#: voxels of the analysis grid around the molecule in a slice window
_WINDOW_MARGIN = 2


def _window(molecule: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The (z, y, x) box of the molecule widened by ``margin`` voxels (the whole grid without molecule)."""
    if not molecule.any():
        return tuple(slice(0, n) for n in molecule.shape)
    box = []
    for axis in range(3):
        hit = np.flatnonzero(molecule.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(0, int(hit[0]) - margin), min(molecule.shape[axis], int(hit[-1]) + 1 + margin)))
    return tuple(box)


def _plane_slice(analysis: RegionAnalysis, scale: Sequence[np.ndarray], plane: Plane, index: int,
                 window: tuple[slice, ...]) -> RegionsSlice:
    """One plane through voxel ``index`` of its cut axis, cropped to ``window`` (z, y, x); the scale
    maps are read in that plane only and made occupancy (scale / full level, clipped to [0, 1])."""
    _name, cut, (horizontal, vertical) = next(p for p in _PLANES if p[0] == plane)
    where = list(window)
    where[cut] = slice(index, index + 1)

    def take(volume: np.ndarray) -> np.ndarray:
        part = np.squeeze(np.asarray(volume)[tuple(where)], axis=cut)
        return np.ascontiguousarray(part if vertical < horizontal else part.T)  # rows: the vertical axis

    level = float(analysis.full_level)
    inverse = np.float32(1 / level) if level > 0 else np.float32(0)
    spacing = analysis.spacing
    # voxel i is centred at i × spacing (the grids' convention): the window spans the voxels' edges
    h, v = window[horizontal], window[vertical]
    extent = ((h.start - 0.5) * spacing[horizontal], (h.stop - 0.5) * spacing[horizontal],
              (v.start - 0.5) * spacing[vertical], (v.stop - 0.5) * spacing[vertical])
    return RegionsSlice(plane=plane, index=int(index), position_A=float(index * spacing[cut]),
                        extent_A=(float(extent[0]), float(extent[1]), float(extent[2]), float(extent[3])),
                        occupancy=tuple(np.clip(take(s).astype(np.float32) * inverse, 0, 1) for s in scale),
                        labels=take(analysis.labels), molecule=take(analysis.molecule))


def _centre_voxel(analysis: RegionAnalysis, mask: np.ndarray) -> tuple[int, int, int]:
    """The (z, y, x) voxel nearest to the centre of mass of ``mask`` (of the molecule when it is empty)."""
    where = mask if mask.any() else analysis.molecule
    if not where.any():
        return tuple(n // 2 for n in analysis.shape)  # type: ignore[return-value]
    centre = ndimage.center_of_mass(where)
    return tuple(int(min(max(round(c), 0), n - 1)) for c, n in zip(centre, analysis.shape))  # type: ignore[return-value]


def regions_view(analysis: RegionAnalysis, scale: Mapping[int, np.ndarray]) -> RegionsView:
    """What the report draws of the regions; ``scale``: class → scale map on the analysis grid (the
    same maps :func:`~occupy_relion.regions.analyse_regions` was given).

    Per region, the plane through its centre in which its section is largest; for the comparison
    page, the three planes through the centre of the variable part.  Only those planes of the maps
    are read (as occupancy: scale / full level, clipped to [0, 1]), cropped to the molecule's box.
    """
    missing = [n for n in analysis.classes if n not in scale]
    if missing:
        raise ValueError(f"regions_view: no scale map of classes {missing}")
    for number in analysis.classes:
        if np.shape(scale[number]) != analysis.shape:
            raise ValueError(f"regions_view: class {number}'s scale map has shape {np.shape(scale[number])}, "
                             f"not the analysis grid's {analysis.shape}")
    maps = [scale[n] for n in analysis.classes]
    window = _window(analysis.molecule | (analysis.labels > 0), _WINDOW_MARGIN)
    region_slices = []
    for region in analysis.regions:
        mask = analysis.labels == region.number
        centre = _centre_voxel(analysis, mask)
        areas = [int(np.count_nonzero(np.take(mask, centre[cut], axis=cut))) for _name, cut, _axes in _PLANES]
        name, cut, _axes = _PLANES[int(np.argmax(areas))]
        region_slices.append(_plane_slice(analysis, maps, name, centre[cut], window))
    centre = _centre_voxel(analysis, analysis.labels > 0)
    comparison = tuple(_plane_slice(analysis, maps, name, centre[cut], window) for name, cut, _axes in _PLANES)
    return RegionsView(classes=analysis.classes, full_level=float(analysis.full_level),
                       regions=tuple(region_slices), comparison=comparison)

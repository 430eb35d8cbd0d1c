"""Local scale (relative occupancy) of a cryo-EM map.

The local statistic is the maximum of the solvent-centred map over a ball of radius ``lowpass / 2``
around each voxel, taken on the low-passed map (occupancy mode) or on the unfiltered map (resolution
mode).  The noise floor (what that maximum reads in pure solvent) is removed in quadrature, and the
result is divided by a full-occupancy reference: the largest median of the statistic over tiles of a
fixed size in Å, anywhere in the box (the typical value of the best-occupied region, so fully occupied
density reads close to 1; the published method's τ-quantile is available as an option).  Everything is defined in Å, so a particle gives the same
numbers at another pixel size or in a bigger box.

Voxels without data (flattened, masked out, zero-padded: :mod:`.nodata`) are filled with the solvent
mean before the low-pass, left out of the solvent fit and the noise floor, and get confidence 0.  A map
with less molecule than a ball of the low-pass radius is not measurable (:class:`Measurability`).

Occupancy mode runs on a working grid of ``lowpass / 4`` Å: the low-passed map is band-limited, so it
is held exactly there, and the scale (smooth at the low-pass) is interpolated back to full size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import maximum_filter1d

from . import filters
from .nodata import NoData, filled, find_no_data
from .settings import EstimateSettings, Measurability, Mode, NoiseFloorSource, ParameterError, SolventRegion
from .solvent import SolventModel, confidence, fit_solvent

MODES: tuple[Mode, ...] = ("occupancy", "resolution")

#: working-grid voxels per low-pass length in occupancy mode
OVERSAMPLING = 4.0

#: fewest solvent voxels from which the noise floor is measured directly (else it is simulated)
_MIN_SOLVENT_VOXELS = 500


class MapError(ValueError):
    """The map cannot be analysed (constant, non-finite, too small ...)."""


@dataclass(frozen=True)
class ScaleParameters:
    """User-facing estimation settings; ``None`` means 'derive from the map'."""

    mode: Mode = "occupancy"
    lowpass: float | None = None  # Å; default max(8 Å, 3 × pixel size)
    kernel_radius: float | None = None  # Å; default lowpass / 2
    tile: float | None = None  # Å, edge of a reference tile; default 2 × lowpass
    reference_quantile: float | None = 0.5  # quantile of a tile that is its value; None: τ (published)

    def __post_init__(self) -> None:
        """Reject values out of range (the one place they are checked; the job names the option)."""
        if self.mode not in MODES:
            raise ParameterError("mode", f"{self.mode!r} is not one of {', '.join(MODES)}")
        for name in ("lowpass", "kernel_radius", "tile"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ParameterError(name, f"must be a positive length in Å, not {value:g}")
        quantile = self.reference_quantile
        if quantile is not None and not 0 < quantile < 1:
            raise ParameterError("reference_quantile", f"must be in (0, 1), not {quantile:g}")

    def resolved(self, pixel_size: float) -> ResolvedScaleParameters:
        """The same parameters with every default filled in for ``pixel_size``."""
        lowpass = self.lowpass if self.lowpass is not None else max(8.0, 3.0 * pixel_size)
        if not lowpass >= 2 * pixel_size:
            raise ParameterError("lowpass", f"lowpass {lowpass} Å is finer than Nyquist ({2 * pixel_size} Å)")
        radius = self.kernel_radius if self.kernel_radius is not None else lowpass / 2
        tile = self.tile if self.tile is not None else 2 * lowpass
        return ResolvedScaleParameters(self.mode, float(lowpass), float(radius), float(tile), self.reference_quantile)


@dataclass(frozen=True)
class ResolvedScaleParameters(ScaleParameters):
    """:class:`ScaleParameters` for one pixel size: every length filled in (Å)."""

    lowpass: float = 0.0
    kernel_radius: float = 0.0
    tile: float = 0.0


@dataclass
class Measurement:
    """One map's local statistic before normalisation (what :func:`normalise` needs)."""

    statistic: np.ndarray  # noise-corrected local maximum on the statistic grid
    confidence: np.ndarray  # on the working grid
    solvent: SolventModel
    reference: float  # this map's own full-occupancy reference
    reference_position: tuple[float, float, float]  # x, y, z of the reference tile centre, Å
    shape: tuple[int, int, int]  # full-size shape
    settings: EstimateSettings
    no_data: NoData | None = None  # voxels without data (flattened, masked out), on the working grid


@dataclass
class ScaleEstimate:
    """Scale and confidence of one map, the solvent model and every derived setting.

    Both maps are kept on the working grid (they are smooth there) and made full size only when asked
    for, through the :attr:`scale` / :attr:`confidence` properties (made once, then kept); the
    modifications interpolate what they need slab by slab.
    """

    scale_grid: np.ndarray
    confidence_grid: np.ndarray
    shape: tuple[int, int, int]
    solvent: SolventModel
    settings: EstimateSettings
    threads: int = 1
    no_data: NoData | None = None  # voxels without data: confidence 0, the modified maps keep the input
    _full: dict = field(default_factory=dict, repr=False)

    @property
    def scale(self) -> np.ndarray:
        """Full-size local scale in [0, 1] (float32)."""
        if "scale" not in self._full:
            self._full["scale"] = filters.upsample_linear(self.scale_grid, self.shape, self.threads)
        return self._full["scale"]

    @property
    def confidence(self) -> np.ndarray:
        """Full-size confidence in [0, 1] that a voxel is not solvent (float32)."""
        if "confidence" not in self._full:
            self._full["confidence"] = filters.upsample_linear(self.confidence_grid, self.shape, self.threads)
        return self._full["confidence"]


def tau_for(kernel_voxels: int) -> float:
    """Root of τⁿ + τ − 1 = 0: the quantile at which the maximum of n noise samples is as likely
    above as one sample is (the published method's reference quantile)."""
    if kernel_voxels <= 1:
        return 0.5
    low, high = 0.0, 1.0  # τⁿ + τ − 1 rises from −1 to 1 on [0, 1]: bisect to double precision
    for _ in range(60):
        middle = 0.5 * (low + high)
        if middle ** kernel_voxels + middle - 1 < 0:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def check_map(volume: np.ndarray, name: str = "map") -> np.ndarray:
    """Reject maps the estimate cannot use; return it as float32."""
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise MapError(f"{name} is not a 3D map (shape {volume.shape})")
    if min(volume.shape) < 8:
        raise MapError(f"{name} is too small ({volume.shape}); at least 8 voxels a side")
    volume = volume.astype(np.float32, copy=False)
    low, high = float(volume.min()), float(volume.max())  # NaN or ±inf anywhere shows up here
    if not (np.isfinite(low) and np.isfinite(high)):
        raise MapError(f"{name} contains NaN or infinite values")
    if not high > low:
        raise MapError(f"{name} is constant ({float(volume.flat[0])}): nothing to estimate")
    return volume


def _solvent_region(
    lowpassed: np.ndarray,
    no_data: NoData,
    pixel_size: float,
    mask: np.ndarray | None,
    threads: int,
) -> tuple[np.ndarray | None, str]:
    """Voxels of the working grid to fit the solvent in, and a name for them (never a no-data voxel)."""
    shape = lowpassed.shape
    excluded = _fit_excluded(no_data)
    if mask is None:
        if excluded is None:
            return None, "whole box"
        return ~excluded, "box outside the flattened solvent"
    mask_w = filters.resample_lowpass(np.asarray(mask, np.float32), pixel_size, shape, None, threads) > 0.5
    inside, outside = mask_w, ~mask_w
    if excluded is not None:
        inside, outside = inside & ~excluded, outside & ~excluded
    if inside.sum() < 100 or outside.sum() < 100:
        region = inside if inside.sum() >= outside.sum() else outside
        return region, "mask region"
    # either polarity: the solvent is the side with the lower mean density
    solvent_inside = lowpassed[inside].mean() < lowpassed[outside].mean()
    if solvent_inside:
        return inside, "inside the solvent mask"
    return outside, "outside the molecular mask"


def _fit_excluded(no_data: NoData) -> np.ndarray | None:
    """Voxels kept out of the solvent fit: no data, and one working voxel around it (the low-pass
    smears the edge of a flattened region into its neighbours), or None when every voxel has data."""
    if not no_data.any:
        return None
    return _dilate(no_data.grid, 1)


def _dilate(region: np.ndarray, voxels: int) -> np.ndarray:
    """``region`` grown by ``voxels`` along each axis (a cube; no wrap at the box faces)."""
    grown = region.view(np.uint8)
    for axis in range(3):
        grown = maximum_filter1d(grown, 2 * voxels + 1, axis=axis, mode="constant")
    return grown.view(bool)


def _near_no_data(no_data: NoData, shape: Sequence[int], radius: float, spacing: Sequence[float],
                  threads: int) -> np.ndarray:
    """Voxels of a grid of ``shape`` (working or full size) whose ball of ``radius`` Å reaches no data."""
    near = no_data.grid
    if tuple(near.shape) != tuple(shape):  # resolution mode: the statistic is full size
        near = filters.upsample_linear(near.astype(np.float32), shape, threads) > 0.001
    return _dilate(near, int(np.ceil(radius / min(spacing))))


def _far_from_molecule(conf: np.ndarray, distance: float, spacing: Sequence[float]) -> np.ndarray:
    """Voxels more than ``distance`` Å (per axis) from any voxel of confidence ≥ 0.5.

    The noise floor is measured there: choosing solvent by a voxel's own confidence would choose low
    values, and the local maximum around them would read about a third below the true floor.
    """
    near = (conf >= 0.5).view(np.uint8)
    for axis, step in enumerate(spacing):
        near = maximum_filter1d(near, 2 * int(np.ceil(distance / step)) + 1, axis=axis, mode="wrap")
    return near == 0


def _simulated_floor(radius: float, spacing: Sequence[float], lowpass: float | None) -> float:
    """Median local maximum of unit-variance, low-passed white noise (used when little solvent)."""
    rng = np.random.default_rng(12345)
    side = 48
    noise = rng.standard_normal((side, side, side), dtype=np.float32)
    if lowpass is not None:
        noise = filters.resample_lowpass(noise, float(spacing[0]), (side,) * 3, lowpass)
    noise /= noise.std()
    return float(np.median(filters.ball_maximum(noise, radius, spacing)))


#: decay of the noise bias of a local maximum with signal: E[max] = a + f·exp(−k·a/f) for a signal
#: maximum a and noise floor f, per mode (calibrated on synthetic particles with
#: benchmarks/calibrate_noise_bias.py: the bias is f in solvent and fades as the signal pins the
#: maximum; faster on the unfiltered map, whose noise is less correlated over the kernel)
NOISE_BIAS_DECAY = {"occupancy": 0.27, "resolution": 0.37}


def _noise_floor_table(decay: float, top: float = 60.0, samples: int = 6001) -> tuple[np.ndarray, float]:
    """Signal a (in units of the floor) for observed maxima m = 0, step, ... top, inverting
    m = a + exp(−k a); below m = 1 the signal is 0."""
    signal = np.linspace(0.0, top + 1, 4 * samples)
    expected = signal + np.exp(-decay * signal)
    observed = np.linspace(0.0, top, samples)
    return np.interp(observed, expected, signal, left=0.0), top / (samples - 1)


def _remove_noise_floor(statistic: np.ndarray, floor: float, decay: float, threads: int = 1) -> np.ndarray:
    """Invert E[max] = a + f·exp(−k·a/f) per voxel: solvent reads 0, strong density keeps its value.

    A plain subtraction of the floor would over-correct strong density (where the signal, not the noise,
    decides where the maximum is); a plain ratio keeps the bias that makes weak density read high.
    """
    if floor <= 0:
        return np.maximum(statistic, 0, out=statistic)
    table, step = _noise_floor_table(decay)
    top = np.float32((len(table) - 1) * step)
    observed = statistic * np.float32(1 / floor)
    corrected = filters.lookup_uniform(observed, 0.0, step, table, threads)
    beyond = observed > top  # far above the floor the bias is below 1e-5 f
    corrected[beyond] = observed[beyond]
    corrected *= np.float32(floor)
    return corrected


def _tile_reference(
    statistic: np.ndarray, spacing: Sequence[float], tile: float, quantile: float
) -> tuple[float, tuple[float, float, float]]:
    """Largest ``quantile`` of ``statistic`` over cubic tiles of ``tile`` Å, anywhere in the box.

    Tiles overlap by half and are laid out from the box centre, so padding a map symmetrically does not
    move them.  A tile's quantile is at most its maximum, so tiles are visited by decreasing maximum
    (from half-tile block maxima) and the search stops when no tile can beat the best found.
    Returns the value and the tile centre (x, y, z) in Å.
    """
    half = [max(1, int(round(tile / s / 2))) for s in spacing]
    half = [min(h, n // 2) for h, n in zip(half, statistic.shape)]
    # half-tile blocks, laid out symmetrically about the box centre
    blocks = [n // h for n, h in zip(statistic.shape, half)]
    offset = [(n - b * h) // 2 for n, b, h in zip(statistic.shape, blocks, half)]
    core = statistic[tuple(slice(o, o + b * h) for o, b, h in zip(offset, blocks, half))]
    block_max = core.reshape(blocks[0], half[0], blocks[1], half[1], blocks[2], half[2]).max(axis=(1, 3, 5))
    # a tile is 2 × 2 × 2 neighbouring blocks
    tile_max = block_max
    for axis in range(3):
        if tile_max.shape[axis] > 1:
            lead = [slice(None)] * 3
            rest = [slice(None)] * 3
            lead[axis], rest[axis] = slice(0, -1), slice(1, None)
            tile_max = np.maximum(tile_max[tuple(lead)], tile_max[tuple(rest)])
    extent = [2 * h if b > 1 else h for h, b in zip(half, blocks)]
    order = np.argsort(tile_max, axis=None)[::-1]
    best, best_start = -np.inf, None
    for flat in order:
        if tile_max.flat[flat] <= best:
            break
        index = np.unravel_index(flat, tile_max.shape)
        start = [o + i * h for o, i, h in zip(offset, index, half)]
        region = statistic[tuple(slice(a, a + e) for a, e in zip(start, extent))]
        value = float(np.quantile(region, quantile))
        if value > best:
            best, best_start = value, start
    centre = [(a + e / 2) * sp for a, e, sp in zip(best_start, extent, spacing)]
    return best, (centre[2], centre[1], centre[0])


def minimum_molecule_volume(lowpass: float) -> float:
    """The least molecule (Å³ reaching confidence 0.5) of a measurable map: a ball of radius ``lowpass``
    (smaller than any protein seen at that resolution; pure noise has a few voxels, EMD-1703 none)."""
    return 4 / 3 * math.pi * lowpass ** 3


def _measurability(conf: np.ndarray, spacing: Sequence[float], lowpass: float) -> tuple[Measurability, str]:
    """Whether enough density stands out to be a molecule, and the warning when not.

    Absolute (a volume in Å³), so neither the box size nor the share of empty space in it matters.
    """
    voxel = float(np.prod(spacing))
    volume = float(np.count_nonzero(conf >= 0.5)) * voxel
    least = minimum_molecule_volume(lowpass)
    if volume >= least:
        return Measurability.MEASURABLE, ""
    return Measurability.NO_MOLECULE, (
        f"not measurable: only {volume:.0f} Å³ reaches confidence 0.5 (a molecule needs {least:.0f} Å³, a ball "
        "of the low-pass radius): pure noise, or nothing stands out of it; its numbers read -1 and it is left "
        "out of the regions and any joint reference")


def _warnings(solvent: SolventModel, measurable: str = "") -> list[str]:
    """Plain-language warnings about the map, for the log (``measurable``: the measurability warning)."""
    warnings = [measurable] if measurable else []
    centres, counts = solvent.centres, solvent.counts
    total = counts.sum()
    below = counts[centres < solvent.mean - 3 * solvent.sd].sum() / total
    above = counts[centres > solvent.mean + 3 * solvent.sd].sum() / total
    if below > 0.005 and below > 2 * above:
        warnings.append(
            f"density looks inverted: {below:.1%} of voxels lie 3 sd below the solvent and {above:.1%} above; "
            "the scale assumes positive density (invert the map first if protein is dark)"
        )
    gaussian_tail = 0.00135 * solvent.weight  # share of a Gaussian beyond +3 sd
    if above - gaussian_tail < 0.002:
        warnings.append("almost no density stands out of the solvent noise: scale and confidence are unreliable")
    return warnings


def measure(
    volume: np.ndarray,
    pixel_size: float,
    parameters: ScaleParameters = ScaleParameters(),
    *,
    mask: np.ndarray | None = None,
    noise: np.ndarray | None = None,
    threads: int = 1,
    check: Callable[[], None] | None = None,
) -> Measurement:
    """Local statistic, solvent model, confidence and own reference of one map.

    ``mask``: optional solvent-definition mask (either polarity) of the map's shape.
    ``noise``: optional pure-noise map of the same shape (e.g. half-map difference / 2): its local
    maximum gives the noise floor directly.  ``check`` is called between long steps (abort).
    """
    volume = check_map(volume)
    if pixel_size <= 0 or not np.isfinite(pixel_size):
        raise MapError(f"pixel size must be positive, not {pixel_size}")
    p = parameters.resolved(pixel_size)
    check = check or (lambda: None)
    box = np.asarray(volume.shape, dtype=np.float64) * pixel_size
    work_shape = filters.working_shape(volume.shape, pixel_size, p.lowpass / OVERSAMPLING)
    work_spacing = tuple(box / np.asarray(work_shape))
    lowpassed = filters.resample_lowpass(volume, pixel_size, work_shape, p.lowpass, threads)
    check()
    no_data = find_no_data(volume, pixel_size, work_shape, p.lowpass, threads)
    region, region_name = _solvent_region(lowpassed, no_data, pixel_size, mask, threads)
    solvent = fit_solvent(lowpassed, region, region_name)
    source = None  # the map with its no-data voxels at the solvent mean (when it has any)
    if no_data.any:  # again from there: no step smeared into the data
        source = filled(volume, no_data, solvent.mean, threads)
        lowpassed = filters.resample_lowpass(source, pixel_size, work_shape, p.lowpass, threads)
        solvent = fit_solvent(lowpassed, region, region_name)
        check()
    conf = confidence(lowpassed, solvent, threads)
    conf[no_data.grid] = 0  # no data is never molecule, whatever side of the solvent mean it lies
    measurability, not_measurable = _measurability(conf, work_spacing, p.lowpass)
    check()

    if p.mode == "occupancy":
        source = None  # not needed any more
        stat_grid, spacing = lowpassed, work_spacing
        stat_grid -= np.float32(solvent.mean)
    else:
        if source is None:
            stat_grid = volume - np.float32(solvent.mean)
        else:  # the filled copy is ours: centred in place (no data reads 0, not its offset from the mean)
            stat_grid = source
            stat_grid -= np.float32(solvent.mean)
        spacing = (pixel_size,) * 3
        conf = filters.upsample_linear(conf, volume.shape, threads)  # keep both on one grid
    statistic = filters.ball_maximum(stat_grid, p.kernel_radius, spacing, threads, check)
    del stat_grid, lowpassed, source
    check()
    kernel_voxels = filters.ball_voxel_count(p.kernel_radius, spacing)

    # noise floor: what the local maximum reads where there is only solvent
    little_solvent = ""
    if noise is not None:
        noise = check_map(noise, "noise map")
        if p.mode == "occupancy":
            noise = filters.resample_lowpass(noise, pixel_size, work_shape, p.lowpass, threads)
        noise_stat = filters.ball_maximum(noise - np.float32(noise.mean()), p.kernel_radius, spacing, threads)
        if no_data.any:  # where the map has no data the halves agree (both masked): no noise to measure
            with_data = ~_near_no_data(no_data, noise_stat.shape, p.kernel_radius, spacing, threads)
            if np.count_nonzero(with_data) >= _MIN_SOLVENT_VOXELS:
                noise_stat = noise_stat[with_data]
        floor, floor_source = float(np.median(noise_stat)), "noise map"
    else:
        solvent_voxels = _far_from_molecule(conf, p.kernel_radius + p.lowpass, spacing)
        if no_data.any:  # no ball that reaches a voxel without data measures the floor
            solvent_voxels &= ~_near_no_data(no_data, solvent_voxels.shape, p.kernel_radius, spacing, threads)
        far = np.count_nonzero(solvent_voxels)
        if far >= _MIN_SOLVENT_VOXELS:
            floor, floor_source = float(np.median(statistic[solvent_voxels])), "solvent voxels"
        else:
            unit = _simulated_floor(p.kernel_radius, spacing, p.lowpass if p.mode == "occupancy" else None)
            if p.mode == "occupancy":
                sd = solvent.sd
            else:
                below = volume < solvent.mean
                if no_data.constant is not None:  # flattened voxels are no noise
                    below &= volume != np.float32(no_data.constant)
                sd = float(np.std(volume[below])) * 1.66 if below.any() else solvent.sd
            floor, floor_source = unit * sd, "simulated noise"
            little_solvent = (
                f"little solvent: only {far * float(np.prod(spacing)):.0f} Å³ of the box lies more than "
                f"{p.kernel_radius + p.lowpass:.0f} Å from the molecule, so the noise floor is simulated and weak "
                "density may have been taken for solvent (the molecule reads smaller); a looser box is safer")
    floor = max(floor, 0.0)
    statistic = _remove_noise_floor(statistic, floor, NOISE_BIAS_DECAY[p.mode], threads)
    tau = tau_for(kernel_voxels)
    quantile = tau if p.reference_quantile is None else p.reference_quantile
    reference, position = _tile_reference(statistic, spacing, p.tile, quantile)
    settings = EstimateSettings(
        mode=p.mode,
        lowpass_angstrom=p.lowpass,
        kernel_radius_angstrom=p.kernel_radius,
        kernel_voxels=kernel_voxels,
        tau=tau,
        reference_quantile=quantile,
        tile_angstrom=p.tile,
        working_pixel_angstrom=float(np.mean(spacing)),
        working_shape=(int(statistic.shape[0]), int(statistic.shape[1]), int(statistic.shape[2])),
        solvent_mean=solvent.mean,
        solvent_sd=solvent.sd,
        solvent_fraction=solvent.weight,
        solvent_region=SolventRegion(solvent.region),
        noise_floor=floor,
        noise_floor_source=NoiseFloorSource(floor_source),
        reference_value=reference,
        reference_position_angstrom=position,
        no_data_fraction=no_data.fraction,
        measurability=measurability,
        warnings=tuple(_warnings(solvent, not_measurable) + ([little_solvent] if little_solvent and
                                                               measurability.measurable else [])),
    )
    return Measurement(statistic, conf, solvent, reference, position, tuple(volume.shape), settings, no_data)


def normalise(measurement: Measurement, reference: float | None = None, threads: int = 1) -> ScaleEstimate:
    """Scale = statistic / reference, clipped to [0, 1], and confidence (full size on demand).

    ``reference`` overrides the map's own reference (joint normalisation of several classes).
    """
    ref = measurement.reference if reference is None else float(reference)
    if not ref > 0:
        raise MapError("no density above the noise floor: the map looks like pure solvent")
    # scale and clip on the working grid: interpolation commutes with both
    scale = np.clip(measurement.statistic * np.float32(1.0 / ref), 0, 1)
    conf = np.clip(measurement.confidence, 0, 1)
    settings = replace(measurement.settings, reference_value=ref, reference_is_joint=reference is not None)
    return ScaleEstimate(scale, conf, measurement.shape, measurement.solvent, settings, threads,
                         measurement.no_data)


def estimate_scale(
    volume: np.ndarray,
    pixel_size: float,
    parameters: ScaleParameters = ScaleParameters(),
    *,
    mask: np.ndarray | None = None,
    noise: np.ndarray | None = None,
    threads: int = 1,
    check: Callable[[], None] | None = None,
) -> ScaleEstimate:
    """Local scale in [0, 1] and confidence in [0, 1] of one map, at full size."""
    return normalise(measure(volume, pixel_size, parameters, mask=mask, noise=noise, threads=threads, check=check), threads=threads)


def joint_reference(measurements: Sequence[Measurement]) -> float:
    """One reference for several maps on the same absolute scale (classes of one classification):
    the largest of the measurable maps' own (of all of them when none is measurable)."""
    measurable = [m for m in measurements if m.settings.measurability.measurable] or list(measurements)
    return max(m.reference for m in measurable)


def molecule_scale(
    scale: np.ndarray, confidence: np.ndarray, threshold: float = 0.5, minimum_scale: float = 0.05
) -> np.ndarray:
    """The scale of the molecule's voxels: confidence at least ``threshold`` and scale at least
    ``minimum_scale`` (weak, significant density of a very clean map, such as the masked edge of a
    refined map, is not molecule).  The one definition every statistic and plot of "the molecule" uses."""
    return scale[(confidence >= threshold) & (scale >= minimum_scale)]


def scale_statistics(scale: np.ndarray, confidence: np.ndarray) -> dict[str, float]:
    """Statistics of the scale inside the molecule (:func:`molecule_scale`).

    Keys: molecule_voxels, scale_mean, scale_sd, scale_median, scale_p05, scale_p95, partial_fraction
    (share of molecule voxels with scale below 0.5).  All NaN-free: an empty molecule gives zeros.
    """
    inside = molecule_scale(scale, confidence)
    if inside.size == 0:
        return {"molecule_voxels": 0, "scale_mean": 0.0, "scale_sd": 0.0, "scale_median": 0.0,
                "scale_p05": 0.0, "scale_p95": 0.0, "partial_fraction": 0.0}
    p05, median, p95 = np.percentile(inside, [5, 50, 95])
    return {
        "molecule_voxels": int(inside.size),
        "scale_mean": float(inside.mean()),
        "scale_sd": float(inside.std()),
        "scale_median": float(median),
        "scale_p05": float(p05),
        "scale_p95": float(p95),
        "partial_fraction": float(np.mean(inside < 0.5)),
    }

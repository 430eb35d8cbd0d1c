"""Local scale (relative occupancy) of a cryo-EM map.

The local statistic is the maximum of the solvent-centred map over a ball of radius ``lowpass / 2``
around each voxel, taken on the low-passed map (occupancy mode) or on the unfiltered map (resolution
mode).  The noise bias of that maximum is removed voxel by voxel against a local noise floor
(:mod:`.noise`: from half-map noise filtered like the map, or the map's own solvent), and the result is
divided by a full-occupancy reference: the largest median of the statistic over tiles of a fixed size
in Å, anywhere in the box (the typical value of the best-occupied region).  The scale is linear and
not clipped above: fully occupied density reads about 1, half of it a little above; the published
method's τ-quantile is available as an option.  Everything is defined in Å, so a particle gives the
same numbers at another pixel size or in a bigger box.

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
from . import noise as noise_mod
from .nodata import NoData, filled, find_no_data
from .settings import EstimateSettings, Measurability, Mode, NoiseFloorSource, ParameterError, SolventRegion
from .solvent import SolventModel, confidence, fit_solvent

MODES: tuple[Mode, ...] = ("occupancy", "resolution")

#: working-grid voxels per low-pass length in occupancy mode
OVERSAMPLING = 4.0

#: fewest solvent voxels from which the noise floor is measured directly (else it is simulated)
_MIN_SOLVENT_VOXELS = 500

#: most molecule voxels the noise-bias decay is fitted on (an even subsample)
_CALIBRATION_VOXELS = 8000

#: seeds of the solvent-spectrum noise the decay is fitted with (each used with its negative)
_CALIBRATION_SEEDS = (4321,)


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
        """Full-size local scale (float32): linear, about 1 for full density, may exceed 1 a little."""
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


def _far_from_molecule(conf: np.ndarray, distance: float, spacing: Sequence[float], threads: int = 1) -> np.ndarray:
    """Weight (0..1) of each voxel as solvent far from the molecule: 1 where no voxel within
    ``distance`` Å (per axis) has confidence above 0.25, 0 where one reaches 0.5, linear between.

    The noise is measured there: choosing solvent by a voxel's own confidence would choose low values,
    and the local maximum around them would read about a third below the true floor.  The weight is
    continuous in the confidence, so a voxel whose confidence crosses 0.5 by a rounding error does not
    switch a whole ball of solvent in or out of the local noise level.
    """
    windows = [2 * int(np.ceil(distance / step)) + 1 for step in spacing]
    near = filters.separable_filter(maximum_filter1d, np.asarray(conf, np.float32), windows, threads)
    weight = np.float32(0.5) - near
    weight *= np.float32(4)
    return np.clip(weight, 0, 1, out=weight)


#: decay of the noise bias with signal per mode when it is not fitted on the map (resolution mode,
#: or too little molecule): E[max] = a + f·exp(−k·a/f)
NOISE_BIAS_DECAY = {"occupancy": 0.27, "resolution": 0.37}


@dataclass
class _NoiseResult:
    """The noise-corrected statistic and how the floor under it was found."""

    statistic: np.ndarray
    floor_median: float
    spread: tuple[float, float]  # 5th and 95th percentile of the floor over the box / its median
    source: NoiseFloorSource
    reason: str
    bias: noise_mod.BiasModel


def _noise_model(
    stat_grid: np.ndarray,
    statistic: np.ndarray,
    conf: np.ndarray,
    excluded: np.ndarray | None,
    noise: np.ndarray | None,
    pixel_size: float,
    work_shape: Sequence[int],
    spacing: Sequence[float],
    p: ResolvedScaleParameters,
    solvent: SolventModel,
    threads: int,
) -> _NoiseResult:
    """Local floor f(x) = c·σ(x) and the bias model; returns the statistic with the bias removed.

    σ(x) is the local noise level: of the half-map noise filtered like the map when given, else of
    the map's far solvent, else (too little of it) the solvent's sd everywhere.  c is the median local
    maximum of that noise in units of σ.  In occupancy mode the decay k is fitted on the map's own
    density scaled by 1/2 and 1/4 and refilled with its own noise, so the corrected statistic is linear.
    """
    occupancy = p.mode == "occupancy"
    if excluded is not None and excluded.shape != stat_grid.shape:  # resolution mode: full size
        excluded = filters.upsample_linear(excluded.astype(np.float32), stat_grid.shape, threads) > 0.001
    usable = np.ones(stat_grid.shape, bool) if excluded is None else ~excluded
    far_weight = _far_from_molecule(conf, p.kernel_radius + p.lowpass, spacing, threads) * usable
    far = far_weight >= 0.5
    far_count = int(np.count_nonzero(far))
    if noise is not None:
        noise = check_map(noise, "noise map")
        if occupancy:
            noise = filters.resample_lowpass(noise, pixel_size, work_shape, p.lowpass, threads)
        noise = noise - np.float32(noise.mean())
        solvent_for_transfer = far_weight if far_count >= _MIN_SOLVENT_VOXELS else (conf < 0.5) & usable
        sample, transfer = noise_mod.match_filter(noise, stat_grid, solvent_for_transfer, threads)
        del noise
        valid = usable
        level = noise_mod.local_level(sample, valid, p.lowpass, spacing, threads)
        source = NoiseFloorSource.NOISE_MAP
        reason = (f"half-map noise filtered like the map (the map's solvent has {transfer:.2f} × its sd), "
                  "local level over the whole box")
    elif far_count >= _MIN_SOLVENT_VOXELS:
        valid = far
        level = noise_mod.local_level(stat_grid, far_weight, p.lowpass, spacing, threads)
        sample = stat_grid  # the map's own solvent (only its far voxels are used for c)
        source = NoiseFloorSource.SOLVENT_VOXELS
        reason = (f"no half maps: the map's own solvent, {far_count} voxels far from the molecule, "
                  "local level extrapolated into the molecule (a RELION map's noise is stronger inside the "
                  "molecule than there, so weak density reads high: with half maps it would not)")
    else:
        weight = np.clip(1 - conf, 0, 1) * usable
        if conf.shape != stat_grid.shape:
            weight = filters.upsample_linear(weight.astype(np.float32), stat_grid.shape, threads)
        power, _, _ = noise_mod.solvent_power(stat_grid, weight, threads)
        sample = noise_mod.coloured_noise(power, stat_grid.shape, solvent.sd if occupancy else
                                          float(np.std(stat_grid[weight > 0.5])) if (weight > 0.5).any()
                                          else solvent.sd, seed=12345, threads=threads)
        valid = usable
        level = np.full(stat_grid.shape, np.float32(sample.std()), np.float32)
        source = NoiseFloorSource.SIMULATED
        reason = (f"only {far_count} solvent voxels far from the molecule (fewer than {_MIN_SOLVENT_VOXELS}): "
                  "noise of the solvent's spectrum at its sd, the same everywhere")
    unit = noise_mod.unit_floor(sample, level, valid, p.kernel_radius, spacing, threads)
    floor = level * np.float32(unit)
    default = NOISE_BIAS_DECAY[p.mode]
    bias = noise_mod.BiasModel(default, False, 0.0)
    if occupancy and float(floor.max()) > 0:
        # the fit reads the trial maps' local maxima only at (at most) _CALIBRATION_VOXELS molecule
        # voxels: each is the maximum over its ball's points of the trial map, computed there alone
        # (the same float32 operations as on the whole grid, so the same values bit for bit)
        molecule = _subsample((conf >= 0.5) & usable, _CALIBRATION_VOXELS)
        neighbours = filters.ball_neighbours(np.nonzero(molecule), stat_grid.shape, p.kernel_radius, spacing)
        refills = []  # each with its negative: antithetic pairs, whose errors largely cancel
        if source is NoiseFloorSource.SOLVENT_VOXELS:  # refill with the solvent's spectrum at the local level
            power, _, _ = noise_mod.solvent_power(stat_grid, far_weight, threads)
            for seed in _CALIBRATION_SEEDS:
                refill = noise_mod.coloured_noise(power, stat_grid.shape, 1.0, seed, threads)
                refill *= level
                near = refill.ravel()[neighbours]
                refills += [near, -near]
            del power, refill
        else:  # the noise sample itself, and its negative: two realisations independent of the map's noise
            near = sample.ravel()[neighbours]
            refills = [near, -near]
        density = stat_grid.ravel()[neighbours]
        trials = []
        for alpha in noise_mod.CALIBRATION_ALPHAS:
            for near in refills:
                trial = density * np.float32(alpha)
                trial += near * np.float32(np.sqrt(1 - alpha * alpha))
                trials.append((alpha, trial.max(axis=0)))
                del trial
        del refills, density, near
        sampled = np.ones(int(np.count_nonzero(molecule)), dtype=bool)
        bias = noise_mod.fit_bias(statistic[molecule], floor[molecule], sampled, trials, default)
        del trials
        if bias.fitted:
            alphas = ", ".join(map(str, noise_mod.CALIBRATION_ALPHAS))
            kept = (" (the default: no decay reads the map's own density at those occupancies better by "
                    f"{noise_mod.TOLERANCE})" if bias.decay == default else "")
            reason += (f"; noise-bias decay {bias.decay:g} fitted on the map's own density scaled to {alphas} "
                       f"and refilled with its noise, rms error {bias.residual:.3f}{kept}")
        else:
            reason += (f"; noise-bias decay {default} (not fitted: fewer than {noise_mod.MIN_CALIBRATION_VOXELS} "
                       "molecule voxels)")
    else:
        reason += f"; noise-bias decay {default} ({p.mode} mode default)"
    if not float(floor.max()) > 0:
        reason += "; WARNING: the noise floor is 0 (no noise measured), so the noise bias is not corrected"
    median = float(np.median(floor[usable])) if usable.any() else 0.0
    if median > 0:
        p05, p95 = np.percentile(floor[usable], [5, 95])
        spread = (float(p05 / median), float(p95 / median))
    else:
        spread = (0.0, 0.0)
    corrected = noise_mod.remove_bias(statistic, floor, bias.decay, threads)
    return _NoiseResult(corrected, median, spread, source, reason, bias)


def _subsample(selected: np.ndarray, most: int) -> np.ndarray:
    """``selected`` thinned to at most ``most`` voxels, evenly over its flat order (reproducible)."""
    count = int(np.count_nonzero(selected))
    if count <= most:
        return selected
    index = np.flatnonzero(selected)[:: int(np.ceil(count / most))]
    out = np.zeros(selected.shape, bool)
    out.flat[index] = True
    return out


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


def _warnings(solvent: SolventModel, measurable: str, fitted_volume: float, lowpass: float) -> list[str]:
    """Plain-language warnings about the map, for the log (``measurable``: the measurability warning).

    "Almost no density stands out" when, beyond what the solvent Gaussian's own tail puts above 3 sd,
    under 0.2 % of the fitted voxels do and that excess is under four balls of ``minimum_molecule_volume``
    (``fitted_volume``: Å³ the histogram covers): a small particle in a big box is not noise."""
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
    excess = above - gaussian_tail
    if excess < 0.002 and excess * fitted_volume < 4 * minimum_molecule_volume(lowpass):
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
    same = tuple(work_shape) == tuple(volume.shape)
    # the low-passed map, and the unfiltered one on the same grid for the no-data search: one transform
    lowpassed, *resampled = filters.resample_lowpasses(volume, pixel_size, work_shape,
                                                       (p.lowpass,) if same else (p.lowpass, None), threads)
    check()
    no_data = find_no_data(volume, pixel_size, work_shape, p.lowpass, threads,
                           resampled=resampled[0] if resampled else None)
    del resampled
    region, region_name = _solvent_region(lowpassed, no_data, pixel_size, mask, threads)
    fitted_volume = (float(np.count_nonzero(region)) if region is not None else float(lowpassed.size)) * float(
        np.prod(work_spacing))  # Å³ the solvent histogram covers
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
    del lowpassed, source
    check()
    kernel_voxels = filters.ball_voxel_count(p.kernel_radius, spacing)

    # noise floor: what the local maximum reads where there is only noise, voxel by voxel; no ball that
    # reaches a voxel without data measures it (where the map has no data, the halves agree too)
    excluded = (_near_no_data(no_data, statistic.shape, p.kernel_radius, spacing, threads) if no_data.any
                else None)
    noise_model = _noise_model(stat_grid, statistic, conf, excluded, noise, pixel_size, work_shape, spacing, p,
                               solvent, threads)
    del stat_grid, excluded
    statistic = noise_model.statistic
    check()
    little_solvent = ""
    if noise_model.source is NoiseFloorSource.SIMULATED:
        little_solvent = (
            f"little solvent: too little of the box lies more than {p.kernel_radius + p.lowpass:.0f} Å from the "
            "molecule, so the noise floor is simulated and weak density may have been taken for solvent (the "
            "molecule reads smaller); a looser box is safer")
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
        noise_floor=noise_model.floor_median,
        noise_floor_source=noise_model.source,
        noise_floor_spread=noise_model.spread,
        noise_floor_reason=noise_model.reason,
        noise_bias_decay=noise_model.bias.decay,
        noise_bias_fitted=noise_model.bias.fitted,
        reference_value=reference,
        reference_position_angstrom=position,
        no_data_fraction=no_data.fraction,
        measurability=measurability,
        warnings=tuple(_warnings(solvent, not_measurable, fitted_volume, p.lowpass) + ([little_solvent] if little_solvent and
                                                               measurability.measurable else [])),
    )
    return Measurement(statistic, conf, solvent, reference, position, tuple(volume.shape), settings, no_data)


def normalise(measurement: Measurement, reference: float | None = None, threads: int = 1) -> ScaleEstimate:
    """Scale = statistic / reference (linear, not clipped above: full density reads about 1, half of it
    above), and confidence (full size on demand).

    ``reference`` overrides the map's own reference (joint normalisation of several classes).
    """
    ref = measurement.reference if reference is None else float(reference)
    if not ref > 0:
        raise MapError("no density above the noise floor: the map looks like pure solvent")
    # scale and clip at 0 on the working grid: interpolation commutes with both
    scale = np.maximum(measurement.statistic * np.float32(1.0 / ref), 0)
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
    """Local scale (about 1 for full density) and confidence in [0, 1] of one map, at full size."""
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
    refined map, is not molecule).  The one definition every statistic and plot of "the molecule" uses.

    In the maps' order, selected a slab of planes at a time (the masks stay small and in cache)."""
    step = max(1, (1 << 20) // max(1, int(np.prod(scale.shape[1:]))))  # about a million voxels a slab
    parts = [s[(c >= threshold) & (s >= minimum_scale)]
             for s, c in ((scale[i:i + step], confidence[i:i + step]) for i in range(0, scale.shape[0], step))]
    return np.concatenate(parts) if parts else np.empty(0, scale.dtype)


def scale_statistics(scale: np.ndarray, confidence: np.ndarray) -> dict[str, float]:
    """Statistics of the scale inside the molecule (:func:`molecule_scale`): :func:`molecule_statistics`."""
    return molecule_statistics(molecule_scale(scale, confidence))


def molecule_statistics(inside: np.ndarray) -> dict[str, float]:
    """Statistics of the molecule's scale values ``inside`` (what :func:`molecule_scale` returns).

    Keys: molecule_voxels, scale_mean, scale_sd, scale_median, scale_p05, scale_p95, partial_fraction
    (share of molecule voxels with scale below 0.5).  All NaN-free: an empty molecule gives zeros.
    """
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

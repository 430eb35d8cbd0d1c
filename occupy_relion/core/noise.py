"""The noise of a map where it is not stationary, and the bias it puts on a local maximum.

The local statistic is the maximum of signal plus noise over a ball, so it reads high where the
noise is strong compared with the signal.  What it reads in pure noise (the *floor*) follows the
local noise level, which varies over the box (RELION noise is stronger inside the molecule; a
helix's noise falls off with the distance from its axis).  This module gives:

* a noise sample on the statistic's grid: the half-map difference filtered like the analysed map
  (the transfer per frequency shell measured in the solvent), or noise of the map's own solvent
  power spectrum (3D, so anisotropic spectra are kept);
* the local noise level σ(x): the smoothed noise power of that sample, or of the map's own far
  solvent extrapolated into the molecule from around it;
* the bias model E[max] = a + f·exp(−k·a/f), f = c·σ(x), with c the median local maximum of the
  noise sample in units of σ and the decay k fitted on the map itself: its own density scaled by α
  and refilled with its own noise must read α (so the estimate is linear in occupancy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy import ndimage

from . import filters

#: width (Gaussian sd) of the window the local noise power is averaged over, in low-pass lengths
LOCAL_WINDOW = 2.0
#: a wider window (low-pass lengths) that fills the molecule's interior from the solvent around it
WIDE_WINDOW = 6.0
#: occupancies the bias model is fitted at (own density scaled by α, refilled with own noise)
CALIBRATION_ALPHAS = (0.5, 0.25)
#: the decays k tried when fitting (coarse steps first, then the fine steps around the best)
DECAY_GRID = np.round(np.arange(0.05, 1.51, 0.025), 3)
#: rms errors of relative occupancy closer than this to the best fit count as equally good
TOLERANCE = 0.02
#: fewest molecule voxels to fit the bias model on (else ``default`` decay is used)
MIN_CALIBRATION_VOXELS = 200


@dataclass(frozen=True)
class BiasModel:
    """E[max] = a + f·exp(−k·a/f) with decay k = ``decay``; whether k was fitted on the map."""

    decay: float
    fitted: bool
    residual: float  # rms error of the relative occupancy over the calibration trials (0 if not fitted)


def solvent_power(values: np.ndarray, weight: np.ndarray, threads: int = 1) -> tuple[np.ndarray, float, float]:
    """Smoothed 3D power spectrum (rfft half grid) of ``weight`` × (values − mean), the mean and the sd.

    ``weight`` (0..1) marks the solvent; the spectrum is smoothed over 3 × 3 × 3 frequency bins, so
    an anisotropic noise spectrum (a helix, a preferred view) is kept.
    """
    weight = np.asarray(weight, np.float32)
    total = float(weight.sum(dtype=np.float64))
    if not total >= 1:
        raise ValueError("no solvent to take a noise spectrum from")
    mean = float((values * weight).sum(dtype=np.float64) / total)
    centred = (values - np.float32(mean)) * weight
    sd = float(np.sqrt(np.square(centred, dtype=np.float64).sum() / float(np.square(weight, dtype=np.float64).sum())))
    power = np.abs(scipy.fft.rfftn(centred, workers=threads)) ** 2
    del centred
    power = ndimage.uniform_filter(power, size=3, mode="wrap")
    power[0, 0, 0] = 0.0
    return power.astype(np.float32), mean, sd


def coloured_noise(power: np.ndarray, shape: Sequence[int], sd: float, seed: int, threads: int = 1) -> np.ndarray:
    """Reproducible Gaussian noise of standard deviation ``sd`` with power spectrum ``power``."""
    shape = tuple(int(n) for n in shape)
    rng = np.random.default_rng(seed)
    spectrum = scipy.fft.rfftn(rng.standard_normal(shape, dtype=np.float32), workers=threads)
    spectrum *= np.sqrt(np.maximum(power, 0))
    noise = scipy.fft.irfftn(spectrum, s=shape, workers=threads).astype(np.float32, copy=False)
    current = float(noise.std())
    if current > 0:
        noise *= np.float32(sd / current)
    return noise


def _shell_index(shape: Sequence[int], shells: int) -> np.ndarray:
    """Radial shell (0 .. shells − 1) of every rfft bin, in units of the grid's own Nyquist."""
    frequency = filters.radial_frequency(shape, np.asarray(shape, dtype=np.float64))  # cycles per voxel
    return np.minimum((frequency / 0.5 * (shells - 1)).astype(np.int64), shells - 1)


def match_filter(noise: np.ndarray, values: np.ndarray, solvent: np.ndarray, threads: int = 1,
                 shells: int = 32) -> tuple[np.ndarray, float]:
    """``noise`` filtered like ``values``: per frequency shell, by √(P_values / P_noise) over the solvent.

    A map that is the mean of its halves has the power of their difference / 2 in its solvent (the
    transfer is 1); a RELION map weighted by its FSC, or low-passed, has less at high frequency.
    Returns the filtered noise and the overall ratio of the solvent's sd to the noise's sd before filtering.
    """
    weight = np.asarray(solvent, np.float32)
    index = _shell_index(values.shape, shells)
    sums = []
    for field in (values, noise):
        masked = (field - np.float32(np.average(field, weights=weight))) * weight
        power = np.abs(scipy.fft.rfftn(masked, workers=threads)) ** 2
        sums.append(np.bincount(index.ravel(), power.ravel(), minlength=shells))
    with np.errstate(divide="ignore", invalid="ignore"):
        transfer = np.where(sums[1] > 0, np.sqrt(sums[0] / sums[1]), 0.0)
    transfer = np.clip(np.nan_to_num(transfer), 0, 4)
    spectrum = scipy.fft.rfftn(noise, workers=threads)
    spectrum *= transfer[index].astype(np.float32)
    out = scipy.fft.irfftn(spectrum, s=noise.shape, workers=threads).astype(np.float32, copy=False)
    total = float(sums[1].sum())
    return out, float(np.sqrt(sums[0].sum() / total)) if total > 0 else 0.0


def _smooth(field: np.ndarray, sigma: float, spacing: Sequence[float]) -> np.ndarray:
    """Periodic Gaussian smoothing with an sd of ``sigma`` Å."""
    return ndimage.gaussian_filter(field, [sigma / s for s in spacing], mode="wrap", truncate=3.0)


def local_level(noise: np.ndarray, valid: np.ndarray, lowpass: float, spacing: Sequence[float],
                threads: int = 1) -> np.ndarray:
    """Local noise sd σ(x) of ``noise`` from its ``valid`` voxels (a mask or a 0..1 weight), averaged
    over a window of ``LOCAL_WINDOW`` low-pass lengths and filled in from a wider one (then the global
    level) where the window holds few valid voxels (inside a molecule, when the noise is the map's own
    solvent).  The windows are far wider than the low-pass, so the averaging is done on a grid of about
    one low-pass per voxel (Fourier-resampled there) and interpolated back."""
    w = np.asarray(valid, np.float32)
    power = np.square(noise) * w
    global_power = float(power.sum(dtype=np.float64) / max(float(w.sum(dtype=np.float64)), 1.0))
    step = float(np.mean(spacing))
    coarse_shape = filters.working_shape(noise.shape, step, lowpass)
    coarse_spacing = tuple(n * s / m for n, s, m in zip(noise.shape, spacing, coarse_shape))
    fields = [np.maximum(filters.resample_lowpass(f, step, coarse_shape, 2.5 * lowpass, threads), 0)
              for f in (power, w)]
    del power, w
    near_p, near_w = (_smooth(f, LOCAL_WINDOW * lowpass, coarse_spacing) for f in fields)
    far_p, far_w = (_smooth(f, WIDE_WINDOW * lowpass, coarse_spacing) for f in fields)
    prior = np.float32(1e-3)
    level = (near_p + np.float32(0.05) * far_p + prior * np.float32(global_power)) / (
        near_w + np.float32(0.05) * far_w + prior)
    level = np.sqrt(np.maximum(level, 0), dtype=np.float32)
    return filters.upsample_linear(level, noise.shape, threads)


def unit_floor(noise: np.ndarray, level: np.ndarray, valid: np.ndarray, radius: float, spacing: Sequence[float],
               threads: int = 1) -> float:
    """c: the median local maximum of ``noise`` in units of its local level, over ``valid`` voxels."""
    maximum = filters.ball_maximum(noise, radius, spacing, threads)
    ratio = maximum[valid] / np.maximum(level[valid], np.float32(1e-30))
    return float(np.median(ratio)) if ratio.size else 0.0


def _inverse_table(decay: float, top: float = 60.0, samples: int = 3001) -> tuple[np.ndarray, float]:
    """a (units of the floor) for observed m = 0, step, ... top, inverting m = a + exp(−k a)."""
    signal = np.linspace(0.0, top + 1, 4 * samples)
    expected = signal + np.exp(-decay * signal)
    observed = np.linspace(0.0, top, samples)
    return np.interp(observed, expected, signal, left=0.0), top / (samples - 1)


def remove_bias(statistic: np.ndarray, floor: np.ndarray | float, decay: float, threads: int = 1) -> np.ndarray:
    """Invert E[max] = a + f·exp(−k·a/f) per voxel (``floor`` f a field or a number): solvent reads 0."""
    floor = np.asarray(floor, np.float32)
    if not float(floor.max()) > 0:
        return np.maximum(statistic, 0)
    table, step = _inverse_table(decay)
    top = np.float32((len(table) - 1) * step)
    safe = np.maximum(floor, np.float32(1e-30))
    observed = statistic / safe
    corrected = filters.lookup_uniform(observed, 0.0, step, table, threads)
    beyond = observed > top  # far above the floor the bias is below 1e-5 f
    corrected[beyond] = observed[beyond]
    corrected *= safe
    return corrected


def fit_bias(
    observed: np.ndarray,
    floor: np.ndarray,
    voxels: np.ndarray,
    trials: Sequence[tuple[float, np.ndarray]],
    default: float,
    strata: int = 4,
) -> BiasModel:
    """The decay k with which the map's own density scaled by α reads α (among the decays that do
    so within ``TOLERANCE`` of the best, the one nearest ``default``: a flat fit keeps the default).

    ``observed``: the local maximum of the map; ``trials``: (α, local maximum of the map scaled by α
    and refilled with its own noise), one or more per α; ``floor``: the measured floor on the same
    grid; ``voxels``: the molecule's voxels to fit on, split into ``strata`` by strength so weak and
    strong density both count.  The relative occupancy of a stratum is the ratio of its medians.
    """
    m1 = observed[voxels].astype(np.float64)
    if m1.size < MIN_CALIBRATION_VOXELS:
        return BiasModel(default, False, 0.0)
    f = np.maximum(floor[voxels].astype(np.float64), 1e-30)
    x1 = m1 / f
    xs = [(alpha, m[voxels].astype(np.float64) / f) for alpha, m in trials]
    edges = np.quantile(m1, np.linspace(0, 1, strata + 1))
    groups = [np.flatnonzero((m1 >= lo) & (m1 <= hi)) for lo, hi in zip(edges[:-1], edges[1:])]
    groups = [g for g in groups if g.size >= 10]
    signal = np.linspace(0.0, 61.0, 4000)

    def invert(x: np.ndarray, expected: np.ndarray) -> np.ndarray:
        """a / f for observed m / f = x; far above the table the bias is nil, so a = m."""
        return np.where(x > expected[-1], x, np.interp(x, expected, signal, left=0.0))

    # every trial as one row, each group's voxels side by side: one median call per group and decay
    alphas = np.array([alpha for alpha, _ in xs])
    stacked = np.stack([x1] + [x for _, x in xs])
    by_group = [(stacked[:, g], f[g]) for g in groups]

    def score(decay: float) -> float:
        expected = signal + np.exp(-decay * signal)
        medians = []  # per group: the map's and each trial's median of a = a/f · f
        for x, fg in by_group:
            a = invert(x, expected)
            a *= fg
            medians.append(np.median(a, axis=1))
        errors = [medians[j][1 + i] / medians[j][0] - alphas[i]
                  for i in range(len(xs)) for j in range(len(groups)) if medians[j][0] > 0]
        return float(np.sqrt(np.mean(np.square(errors)))) if errors else np.inf

    grid = np.union1d(DECAY_GRID, [default])
    scores = np.array([score(k) for k in grid])
    if not np.isfinite(scores).any():
        return BiasModel(default, False, 0.0)
    # among the decays the map cannot tell from the best (within TOLERANCE), the one nearest the default
    plausible = np.flatnonzero(scores <= scores.min() + TOLERANCE)
    choice = plausible[np.argmin(np.abs(grid[plausible] - default))]
    best = (float(scores[choice]), float(grid[choice]))
    return BiasModel(float(best[1]), True, best[0])

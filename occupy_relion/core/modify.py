"""Modify a full-resolution map by its local scale: amplify (equalise), attenuate, sigmoid.

Each modification is a per-voxel factor F(S) applied to the density above the solvent mean μ,
weighted by the confidence C that a voxel is not solvent:

    out = V + (V − μ)·G + H·noise,   G = C·(F − 1)  (solvent kept)   or  G = C·F − 1  (solvent flattened)
                                     H = C·√(1 − F²) where F < 1 (attenuation and sigmoid only)

so attenuated density is replaced by solvent-like noise of the same level, not by a hole.  The scale
is linear and may exceed 1 a little; for a gain it is clipped to [floor, 1], where the floor is
``scale_limit`` or ``1 / max_gain``, whichever is larger (:func:`gain_floor`): no factor is ever
infinite or NaN, and no density is lifted more than ``max_gain`` times, so smooth low density (a
detergent belt, a micelle, flexible fuzz) is not lifted above the protein.  G and H depend only
on scale and confidence, so every output scales with the input's intensity, and F = 1 (γ = 1) returns
the input exactly.

G and H are smooth, so they are computed on whatever grid scale and confidence come on (the working
grid of the estimate, or full size) and interpolated slab by slab while the full-size map is made.

Voxels without data (``no_data``: flattened, masked out; :mod:`.nodata`) get G = H = 0 on that grid,
and every full-size voxel of the gate (exactly flattened, or mostly in the grid's no-data region) is the
input exactly: a modified map never paints structure or noise into a masked region.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .filters import RowInterpolator, run_in_slabs, upsample_linear
from .nodata import NoData, full_size_rows

DEFAULT_SCALE_LIMIT = 0.05
#: the largest factor equalisation multiplies density by (the scale is floored at its inverse)
DEFAULT_MAX_GAIN = 4.0

#: output planes per block: blocks stay small while several operations run on them
_SLAB = 8

Factor = Callable[[np.ndarray], np.ndarray]


def gain_floor(scale_limit: float, max_gain: float) -> float:
    """The lowest scale a gain is computed from: ``scale_limit`` or ``1 / max_gain``, the larger."""
    if not max_gain > 1:
        raise ValueError(f"maximum gain must be above 1, not {max_gain}")
    return max(float(scale_limit), 1.0 / float(max_gain))


def _limited(scale: np.ndarray, scale_limit: float) -> np.ndarray:
    """A float32 copy of ``scale`` clipped to [``scale_limit``, 1] (the linear scale may exceed 1)."""
    if not 0 < scale_limit < 1:
        raise ValueError(f"scale limit must be in (0, 1), not {scale_limit}")
    return np.clip(scale, np.float32(scale_limit), np.float32(1), dtype=np.float32)


def amplify_factor(scale: np.ndarray, gamma: float, scale_limit: float = DEFAULT_SCALE_LIMIT) -> np.ndarray:
    """S^(1/γ − 1): γ = 1 leaves the map, γ → ∞ divides by S (full equalisation)."""
    if not gamma >= 1:
        raise ValueError(f"amplification power must be >= 1, not {gamma}")
    s = _limited(scale, scale_limit)
    if math.isinf(gamma):
        return np.reciprocal(s, out=s)
    return np.power(s, np.float32(1 / gamma - 1), out=s)


def attenuate_factor(scale: np.ndarray, gamma: float, scale_limit: float = DEFAULT_SCALE_LIMIT) -> np.ndarray:
    """S^(γ − 1): γ = 1 leaves the map, larger γ removes partial density more."""
    if not gamma >= 1:
        raise ValueError(f"attenuation power must be >= 1, not {gamma}")
    s = _limited(scale, scale_limit)
    return np.power(s, np.float32(gamma - 1), out=s)


def sigmoid_factor(
    scale: np.ndarray, gamma: float, pivot: float, scale_limit: float = DEFAULT_SCALE_LIMIT
) -> np.ndarray:
    """T(S)/S where T pushes scales above ``pivot`` towards 1 and below it towards 0 with power γ.

    T(S) = p (S/p)^γ below the pivot, 1 − (1 − p) ((1 − S)/(1 − p))^γ above; T(p) = p, T(1) = 1.
    """
    if not gamma >= 1:
        raise ValueError(f"sigmoid power must be >= 1, not {gamma}")
    if not 0 < pivot < 1:
        raise ValueError(f"sigmoid pivot must be in (0, 1), not {pivot}")
    s = _limited(scale, scale_limit)
    g, p = np.float32(gamma), np.float32(pivot)
    low = p * (s / p) ** g
    high = 1 - (1 - p) * ((1 - s) / (1 - p)) ** g
    target = np.where(s <= p, low, high)
    target /= s
    return target.astype(np.float32, copy=False)


def gain_fields(
    scale: np.ndarray,
    confidence: np.ndarray,
    factor: Factor,
    exclude_solvent: bool = False,
    with_noise: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """G (gain on V − μ) and H (weight of the noise fill, or None) on the grid of ``scale``."""
    f = factor(scale)
    noise_weight = None
    if with_noise:
        noise_weight = np.clip(1 - f * f, 0, None)
        np.sqrt(noise_weight, out=noise_weight)
        noise_weight *= confidence
    if exclude_solvent:
        f *= confidence
        f -= 1
    else:
        f -= 1
        f *= confidence
    return f, noise_weight


def apply_gain(
    volume: np.ndarray,
    gain: np.ndarray,
    solvent_mean: float,
    noise: np.ndarray | None = None,
    noise_weight: np.ndarray | None = None,
    threads: int = 1,
    no_data: NoData | None = None,
) -> np.ndarray:
    """out = V + (V − μ)·G + H·noise at full size, G and H interpolated from their grid slab by slab.

    The only full-size array made is the output; where G = 0 and H = 0 the output is exactly V, and so
    it is on every voxel of the ``no_data`` gate.
    """
    mu = np.float32(solvent_mean)
    out = np.empty(volume.shape, dtype=np.float32)
    use_noise = noise is not None and noise_weight is not None
    gate_grid = no_data.grid.astype(np.float32) if no_data is not None and no_data.any else None

    def work(rows: range) -> None:
        gains = RowInterpolator(gain, volume.shape)
        weights = RowInterpolator(noise_weight, volume.shape) if use_noise else None
        empty = RowInterpolator(gate_grid, volume.shape) if gate_grid is not None else None
        buffer = np.empty((_SLAB,) + volume.shape[1:], np.float32)
        for start in range(rows.start, rows.stop, _SLAB):
            stop = min(start + _SLAB, rows.stop)
            o = out[start:stop]
            v = volume[start:stop]
            scratch = buffer[:stop - start]
            np.subtract(v, mu, out=o)
            o *= gains.rows(start, stop, out=scratch)
            o += v
            if weights is not None:
                fill = weights.rows(start, stop, out=scratch)
                fill *= noise[start:stop]
                o += fill
            if empty is not None and no_data is not None:
                gate = full_size_rows(no_data, v, empty.rows(start, stop, out=scratch))
                o[gate] = v[gate]

    run_in_slabs(work, volume.shape[0], threads)
    return out


def _modify(
    volume: np.ndarray,
    scale: np.ndarray,
    confidence: np.ndarray,
    solvent_mean: float,
    factor: Factor,
    noise: np.ndarray | None,
    exclude_solvent: bool,
    threads: int,
    no_data: NoData | None = None,
) -> np.ndarray:
    if scale.shape != confidence.shape:
        raise ValueError(f"scale {scale.shape} and confidence {confidence.shape} are on different grids")
    gain, noise_weight = gain_fields(scale, confidence, factor, exclude_solvent, noise is not None)
    if no_data is not None and no_data.any:
        empty = no_data.grid
        if empty.shape != gain.shape:  # resolution mode: scale and confidence are full size
            empty = upsample_linear(empty.astype(np.float32), gain.shape, threads) > 0.5
        gain[empty] = 0
        if noise_weight is not None:
            noise_weight[empty] = 0
    return apply_gain(volume, gain, solvent_mean, noise, noise_weight, threads, no_data)


def amplify(
    volume: np.ndarray,
    scale: np.ndarray,
    confidence: np.ndarray,
    solvent_mean: float,
    gamma: float = math.inf,
    scale_limit: float = DEFAULT_SCALE_LIMIT,
    exclude_solvent: bool = False,
    threads: int = 1,
    no_data: NoData | None = None,
) -> np.ndarray:
    """Raise partial-occupancy density towards full: γ = ∞ (default) equalises fully.

    ``scale`` and ``confidence`` may be full size or on a coarser grid covering the same box.
    """
    amplify_factor(np.ones(1, np.float32), gamma, scale_limit)  # check parameters before any work
    return _modify(volume, scale, confidence, solvent_mean, lambda s: amplify_factor(s, gamma, scale_limit),
                   None, exclude_solvent, threads, no_data)


def attenuate(
    volume: np.ndarray,
    scale: np.ndarray,
    confidence: np.ndarray,
    solvent_mean: float,
    gamma: float,
    noise: np.ndarray | None = None,
    scale_limit: float = DEFAULT_SCALE_LIMIT,
    exclude_solvent: bool = False,
    threads: int = 1,
    no_data: NoData | None = None,
) -> np.ndarray:
    """Lower partial-occupancy density, filling what is removed with ``noise`` (solvent-like)."""
    attenuate_factor(np.ones(1, np.float32), gamma, scale_limit)
    return _modify(volume, scale, confidence, solvent_mean, lambda s: attenuate_factor(s, gamma, scale_limit),
                   noise, exclude_solvent, threads, no_data)


def sigmoid(
    volume: np.ndarray,
    scale: np.ndarray,
    confidence: np.ndarray,
    solvent_mean: float,
    gamma: float,
    pivot: float = 0.5,
    noise: np.ndarray | None = None,
    scale_limit: float = DEFAULT_SCALE_LIMIT,
    exclude_solvent: bool = False,
    threads: int = 1,
    no_data: NoData | None = None,
) -> np.ndarray:
    """Push scales above ``pivot`` to full and below it to none; removed density becomes noise."""
    sigmoid_factor(np.ones(1, np.float32), gamma, pivot, scale_limit)
    return _modify(volume, scale, confidence, solvent_mean,
                   lambda s: sigmoid_factor(s, gamma, pivot, scale_limit), noise, exclude_solvent, threads, no_data)

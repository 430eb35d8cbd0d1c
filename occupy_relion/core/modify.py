"""Modify a full-resolution map by its local scale: amplify (equalise), attenuate, sigmoid.

Each modification is a per-voxel factor F applied to the density above the solvent mean μ:
``out = V + (V − μ)(F − 1)``.  The change is weighted by the confidence C that a voxel is not
solvent (solvent kept as it was), or the solvent is flattened to μ.  Scales below ``scale_limit``
are treated as ``scale_limit``, so no factor is ever infinite or NaN.  Attenuation and sigmoid fill
what they remove with solvent-like noise, so attenuated regions look like solvent, not like holes.
Because F depends only on scale and confidence, every output scales with the input's intensity.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_SCALE_LIMIT = 0.05


def _limited(scale: np.ndarray, scale_limit: float) -> np.ndarray:
    """A float32 copy of ``scale`` with values below ``scale_limit`` raised to it."""
    if not 0 < scale_limit < 1:
        raise ValueError(f"scale limit must be in (0, 1), not {scale_limit}")
    return np.maximum(scale, np.float32(scale_limit), dtype=np.float32)


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


def apply_factor(
    volume: np.ndarray,
    factor: np.ndarray,
    confidence: np.ndarray,
    solvent_mean: float,
    exclude_solvent: bool = False,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """out = V + C (V − μ)(F − 1), plus noise √(1 − F²) C where density was removed (F < 1).

    ``exclude_solvent`` flattens the solvent: out = μ + C F (V − μ) (noise fill likewise by C).
    ``factor`` is used as scratch space and overwritten.
    """
    mu = np.float32(solvent_mean)
    f = factor
    fill = None
    if noise is not None:
        fill = np.clip(1 - f * f, 0, None)
        np.sqrt(fill, out=fill)
        fill *= confidence
        fill *= noise
    out = np.subtract(volume, mu, dtype=np.float32)
    if exclude_solvent:
        f *= confidence
        out *= f
        out += mu
    else:
        f -= 1
        f *= confidence
        out *= f
        out += volume  # V + C (V − μ)(F − 1): exactly V where F = 1 or C = 0
    if fill is not None:
        out += fill
    return out


def amplify(
    volume: np.ndarray,
    scale: np.ndarray,
    confidence: np.ndarray,
    solvent_mean: float,
    gamma: float = math.inf,
    scale_limit: float = DEFAULT_SCALE_LIMIT,
    exclude_solvent: bool = False,
) -> np.ndarray:
    """Raise partial-occupancy density towards full: γ = ∞ (default) equalises fully."""
    factor = amplify_factor(scale, gamma, scale_limit)
    return apply_factor(volume, factor, confidence, solvent_mean, exclude_solvent)


def attenuate(
    volume: np.ndarray,
    scale: np.ndarray,
    confidence: np.ndarray,
    solvent_mean: float,
    gamma: float,
    noise: np.ndarray | None = None,
    scale_limit: float = DEFAULT_SCALE_LIMIT,
    exclude_solvent: bool = False,
) -> np.ndarray:
    """Lower partial-occupancy density, filling what is removed with ``noise`` (solvent-like)."""
    factor = attenuate_factor(scale, gamma, scale_limit)
    return apply_factor(volume, factor, confidence, solvent_mean, exclude_solvent, noise)


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
) -> np.ndarray:
    """Push scales above ``pivot`` to full and below it to none; removed density becomes noise."""
    factor = sigmoid_factor(scale, gamma, pivot, scale_limit)
    return apply_factor(volume, factor, confidence, solvent_mean, exclude_solvent, noise)

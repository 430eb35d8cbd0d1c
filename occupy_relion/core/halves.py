"""A map and its noise from two half maps (RELION's independent half reconstructions).

The mean of the halves is the map; half their difference has the noise of that mean and no signal
(the signal is the same in both), so its local maximum is the noise floor directly.
"""

from __future__ import annotations

import numpy as np


def half_map_noise(half1: np.ndarray, half2: np.ndarray) -> np.ndarray | None:
    """(half1 − half2) / 2 as float32, or None when the halves are identical (their difference holds no noise)."""
    noise = np.subtract(half1, half2, dtype=np.float32)
    noise *= np.float32(0.5)
    if not noise.max() > noise.min():
        return None
    return noise


def half_map_mean(half1: np.ndarray, half2: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """(half1 + half2) / 2 as float32; ``out`` (e.g. ``half1``, when it is no longer needed) saves a copy."""
    mean = np.add(half1, half2, out=out, dtype=np.float32)
    mean *= np.float32(0.5)
    return mean

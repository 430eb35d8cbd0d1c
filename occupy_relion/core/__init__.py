"""The numeric core: arrays and numbers in, arrays out.  No files, no RELION.

Flow: :func:`measure` (low-pass, solvent model, local statistic, own reference) → :func:`normalise`
(scale and confidence at full size, optionally against a joint reference) → :func:`modify_map`
(equalised, attenuated, sigmoid maps at full resolution).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .halves import half_map_mean, half_map_noise
from .modify import DEFAULT_MAX_GAIN, DEFAULT_SCALE_LIMIT, amplify, attenuate, gain_floor, sigmoid
from .nodata import zero_where_no_data
from .scale import (
    MODES,
    MapError,
    Measurement,
    ScaleEstimate,
    ScaleParameters,
    check_map,
    estimate_scale,
    joint_reference,
    measure,
    molecule_scale,
    molecule_statistics,
    normalise,
    scale_statistics,
    tau_for,
)
from .settings import EstimateSettings, Measurability, Mode, NoiseFloorSource, ParameterError, SolventRegion
from .solvent import SolventFitError, SolventModel, solvent_noise, solvent_spectrum

__all__ = [
    "DEFAULT_MAX_GAIN", "MODES", "EstimateSettings", "MapError", "Measurability", "Measurement", "Mode",
    "ModifyParameters", "NoiseFloorSource", "ParameterError", "ScaleEstimate", "ScaleParameters", "SolventFitError",
    "SolventModel", "SolventRegion", "amplify", "attenuate", "check_map", "estimate_scale", "gain_floor",
    "half_map_mean", "half_map_noise", "joint_reference", "measure", "modify_map", "molecule_scale",
    "molecule_statistics", "normalise",
    "scale_statistics", "sigmoid", "solvent_like_noise", "tau_for",
]


@dataclass(frozen=True)
class ModifyParameters:
    """Which modified maps to make.  ``amplify`` γ (∞ = full equalisation) is always made;
    ``attenuate`` and ``sigmoid`` γ only when set."""

    amplify: float = math.inf
    attenuate: float | None = None
    sigmoid: float | None = None
    pivot: float = 0.5
    scale_limit: float = DEFAULT_SCALE_LIMIT
    max_gain: float = DEFAULT_MAX_GAIN  # no density is multiplied by more (scale floored at 1 / max_gain)
    exclude_solvent: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        """Reject values out of range (the one place they are checked; the job names the option)."""
        for name in ("amplify", "attenuate", "sigmoid"):
            value = getattr(self, name)
            if value is not None and not value >= 1:
                raise ParameterError(name, f"the power must be at least 1, not {value:g}")
        if not 0 < self.pivot < 1:
            raise ParameterError("pivot", f"must be between 0 and 1, not {self.pivot:g}")
        if not 0 < self.scale_limit < 1:
            raise ParameterError("scale_limit", f"must be between 0 and 1, not {self.scale_limit:g}")
        if not self.max_gain > 1:  # NaN fails too; inf means no bound beyond the scale limit
            raise ParameterError("max_gain", f"must be above 1, not {self.max_gain:g}")

    @property
    def gain_floor(self) -> float:
        """The lowest scale a gain is computed from: max(scale_limit, 1 / max_gain)."""
        return gain_floor(self.scale_limit, self.max_gain)


def solvent_like_noise(
    volume: np.ndarray, estimate: ScaleEstimate, pixel_size: float, seed: int = 0, threads: int = 1
) -> np.ndarray:
    """Reproducible noise with the spectrum and level of the map's own solvent (no-data voxels left out)."""
    weight = 1 - estimate.confidence
    zero_where_no_data(weight, volume, estimate.no_data, threads)
    freqs, amplitude, sd = solvent_spectrum(volume, weight, pixel_size, threads)
    del weight  # a full-size map: freed before the noise (another one) is made
    return solvent_noise(volume.shape, pixel_size, freqs, amplitude, sd, seed, threads)


def modify_map(
    volume: np.ndarray,
    estimate: ScaleEstimate,
    pixel_size: float,
    parameters: ModifyParameters = ModifyParameters(),
    threads: int = 1,
    check: Callable[[], None] | None = None,
) -> dict[str, np.ndarray]:
    """The modified maps of ``volume``: always "equalised", plus "attenuated" / "sigmoid" when asked."""
    check = check or (lambda: None)
    p = parameters
    mu = estimate.solvent.mean
    common: dict[str, Any] = dict(scale_limit=p.gain_floor, exclude_solvent=p.exclude_solvent, threads=threads,
                                  no_data=estimate.no_data)
    scale, conf = estimate.scale_grid, estimate.confidence_grid  # interpolated slab by slab
    out = {"equalised": amplify(volume, scale, conf, mu, p.amplify, **common)}
    check()
    noise = None
    if p.attenuate is not None or p.sigmoid is not None:
        noise = solvent_like_noise(volume, estimate, pixel_size, p.seed, threads)
    if p.attenuate is not None:
        out["attenuated"] = attenuate(volume, scale, conf, mu, p.attenuate, noise, **common)
        check()
    if p.sigmoid is not None:
        out["sigmoid"] = sigmoid(volume, scale, conf, mu, p.sigmoid, p.pivot, noise, **common)
        check()
    return out

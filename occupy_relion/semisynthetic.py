"""Semi-synthetic cases with known relative occupancy, built from a real map.

A slab of a real map (along one axis, with a raised-cosine edge) is scaled down by a known factor
about the solvent mean, and the noise power the scaling removed is refilled with noise of the map's
own solvent spectrum (the full 3D power spectrum of its solvent, smoothed, so an anisotropic helical
or tilted-noise spectrum is kept), so the noise stays stationary while the density drops.  Optionally
more noise of that spectrum is added everywhere.  Pure: arrays in, arrays and numbers out, seeded.

The truth is the factor per voxel; :func:`relative_occupancy` reads an estimated scale map back as
the median scale inside the slab's core over the median outside it, over the strongest voxels of the
original map (its top fraction by low-passed density), which is what a user would read.

:func:`make_half_map_case` does the same with a reconstruction's two half maps, refilling with their
half difference: the map's own, non-stationary noise, with no model of it at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .core import filters, half_map_mean, half_map_noise
from .core.noise import coloured_noise, solvent_power


@dataclass(frozen=True)
class Slab:
    """A slab along ``axis`` from ``start`` to ``stop`` Å, with a raised-cosine edge of ``edge`` Å."""

    axis: int
    start: float
    stop: float
    edge: float

    def __post_init__(self) -> None:
        if self.axis not in (0, 1, 2) or not self.stop - self.start > 2 * self.edge >= 0:
            raise ValueError(f"not a slab: axis {self.axis}, {self.start}-{self.stop} Å, edge {self.edge} Å")

    def weight(self, length: int, pixel_size: float) -> np.ndarray:
        """1 inside, 0 outside, a raised cosine over ``edge`` Å inside each face (1D, along the axis)."""
        x = (np.arange(length) + 0.5) * pixel_size
        inner = np.minimum(x - self.start, self.stop - x)
        if self.edge == 0:
            return (inner >= 0).astype(np.float32)
        ramp = np.clip(inner / self.edge, 0, 1)
        return (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)

    def factors(self, length: int, pixel_size: float, factor: float) -> tuple[np.ndarray, np.ndarray]:
        """(t, r) along the axis, shaped to broadcast over a map (float32): what the density is scaled
        by (``factor`` inside, 1 outside) and what the refilled noise is, √(1 − t²), so t² + r² = 1
        keeps the noise power."""
        truth = 1 - (1 - factor) * self.weight(length, pixel_size)
        refill = np.sqrt(np.clip(1 - truth ** 2, 0, None))
        view = [None, None, None]
        view[self.axis] = slice(None)  # type: ignore[call-overload]
        return truth[tuple(view)].astype(np.float32), refill[tuple(view)].astype(np.float32)


@dataclass(frozen=True)
class Case:
    """A semi-synthetic map and what it is known to hold."""

    volume: np.ndarray  # float32, the real map with the slab scaled and the noise refilled
    pixel_size: float
    slab: Slab
    factor: float  # relative occupancy inside the slab
    extra_noise: float  # added noise, in units of the solvent sd
    solvent_mean: float
    solvent_sd: float


def make_case(
    volume: np.ndarray,
    pixel_size: float,
    solvent_weight: np.ndarray,
    slab: Slab,
    factor: float,
    extra_noise: float = 0.0,
    seed: int = 0,
    threads: int = 1,
    solvent_mean: float | None = None,
) -> Case:
    """``volume`` with ``slab`` scaled to ``factor`` about the solvent mean, the lost noise power
    refilled and ``extra_noise`` × the solvent sd of the same spectrum added everywhere.

    ``solvent_weight`` (0..1, the map's shape) marks the solvent the noise spectrum is taken from;
    ``solvent_mean`` (default: the weighted mean there) is the level the density is scaled about."""
    if not 0 < factor <= 1 or extra_noise < 0:
        raise ValueError(f"factor must be in (0, 1] and extra noise >= 0, not {factor}, {extra_noise}")
    volume = np.asarray(volume, np.float32)
    power, weighted_mean, sd = solvent_power(volume, solvent_weight, threads)
    mean = weighted_mean if solvent_mean is None else float(solvent_mean)
    t, r = slab.factors(volume.shape[slab.axis], pixel_size, factor)
    out = (volume - np.float32(mean)) * t
    out += r * coloured_noise(power, volume.shape, sd, seed, threads)
    if extra_noise > 0:
        out += coloured_noise(power, volume.shape, extra_noise * sd, seed + 1000, threads)
    out += np.float32(mean)
    return Case(out.astype(np.float32), pixel_size, slab, factor, extra_noise, mean, sd)


def make_half_map_case(
    half1: np.ndarray,
    half2: np.ndarray,
    pixel_size: float,
    slab: Slab,
    factor: float,
    solvent_mean: float,
    sign: int = 1,
) -> tuple[Case, np.ndarray]:
    """A case with the real noise of a reconstruction: the mean of two half maps with ``slab`` scaled
    to ``factor`` about ``solvent_mean``, the lost power refilled with ``sign`` × their half
    difference, and that difference (the noise map the case's own halves would give).

    The half difference (h1 − h2) / 2 has the statistics of the mean's own noise everywhere,
    non-stationary as it is (stronger inside the molecule, fading in a masked solvent), and is
    independent of it, so the refilled slab keeps the map's real noise voxel by voxel; ``sign`` −1
    gives a second realisation.
    """
    if not 0 < factor <= 1 or sign not in (1, -1):
        raise ValueError(f"factor must be in (0, 1] and sign ±1, not {factor}, {sign}")
    half1, half2 = np.asarray(half1, np.float32), np.asarray(half2, np.float32)
    if half1.shape != half2.shape:
        raise ValueError(f"the half maps differ in shape: {half1.shape} and {half2.shape}")
    mean = half_map_mean(half1, half2)
    difference = half_map_noise(half1, half2)
    if difference is None:  # identical halves: no noise to refill with
        difference = np.zeros_like(mean)
    t, r = slab.factors(mean.shape[slab.axis], pixel_size, factor)
    mean -= np.float32(solvent_mean)
    mean *= t
    mean += np.float32(sign) * r * difference
    mean += np.float32(solvent_mean)
    sd = float(difference.std())
    return Case(mean, pixel_size, slab, factor, 0.0, float(solvent_mean), sd), difference


def regions(case: Case, original: np.ndarray, top_fraction: float, margin: float,
            lowpass: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """(core, outside): the top ``top_fraction`` of ``original`` by low-passed density, inside the
    slab's core and outside the slab, each ``margin`` Å clear of the slab's edge (the estimate's kernel
    and low-pass blur the step)."""
    axis, n = case.slab.axis, original.shape[case.slab.axis]
    x = (np.arange(n) + 0.5) * case.pixel_size
    inner = np.minimum(x - case.slab.start, case.slab.stop - x)  # > 0 inside the slab
    view = [None, None, None]
    view[axis] = slice(None)  # type: ignore[call-overload]
    core_line = (inner >= case.slab.edge + margin)[tuple(view)]
    out_line = (inner <= -margin)[tuple(view)]
    smooth = filters.resample_lowpass(original, case.pixel_size, original.shape, lowpass)
    top = smooth >= np.quantile(smooth, 1 - top_fraction)
    core, outside = top & core_line, top & out_line
    if core.sum() < 10 or outside.sum() < 10:
        raise ValueError("too few strong voxels inside or outside the slab to compare")
    return core, outside


def relative_occupancy(scale: np.ndarray, original_scale: np.ndarray, core: np.ndarray,
                       outside: np.ndarray) -> float:
    """Relative occupancy the estimate reads inside the slab: the median over ``core`` of the voxel's
    scale on the case over its scale on the original map, divided by the same median ``outside``
    (which is 1 for an estimate whose reference did not move).

    Voxel by voxel, because a ratio of medians over the strongest voxels of a real map is ill-posed:
    their scale is bimodal (molecule and fringe), and a median that falls in the gap jumps.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = np.median(scale[core] / np.maximum(original_scale[core], 1e-6))
        control = np.median(scale[outside] / np.maximum(original_scale[outside], 1e-6))
    return float(inside / control)

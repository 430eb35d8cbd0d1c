"""Soft-edged masks the way ``relion_mask_create`` makes them, and the resampling of a region onto
the map's own grid.

RELION's recipe (``--ini_threshold``, ``--extend_inimask N``, ``--width_soft_edge W``, both in pixels):
a binary map, extended to every voxel closer than N pixels to it, then a raised-cosine edge
``0.5 + 0.5·cos(π·d / W)`` for the voxels closer than W pixels to the extended mask (d: Euclidean
distance to its nearest voxel), 0 beyond.  Here N and W are given in Å.  Distances are exact Euclidean
distance transforms taken only over the mask's bounding box (plus N + W), so a small region in a big
box costs little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .analysis import RegionAnalysis

#: default extension and soft edge (Å), and the fewest pixels of the map the mask is made for: the
#: regions already reach out to the rim of density, so a little more than RELION's usual 3 and 6
#: pixels at 1 Å would take in the neighbouring domains of a coarse map
DEFAULT_EXTEND = (3.0, 1.0)
DEFAULT_SOFT_EDGE = (6.0, 2.0)


@dataclass(frozen=True)
class MaskParameters:
    """How a region's binary mask is made soft: extended by ``extend`` Å, then a raised-cosine edge
    ``soft_edge`` Å wide.  ``None``: 3 Å (at least 1 pixel) and 6 Å (at least 2 pixels)."""

    extend: float | None = None
    soft_edge: float | None = None

    def __post_init__(self) -> None:
        for name in ("extend", "soft_edge"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"mask {name} must be a finite number of Å ≥ 0, not {value}")

    def in_pixels(self, pixel_size: float) -> tuple[float, float]:
        """(extension, soft edge) in pixels of a map of ``pixel_size`` Å."""
        if not (math.isfinite(pixel_size) and pixel_size > 0):
            raise ValueError(f"pixel size must be positive, not {pixel_size}")
        extend = (max(DEFAULT_EXTEND[0] / pixel_size, DEFAULT_EXTEND[1]) if self.extend is None
                  else self.extend / pixel_size)
        soft = (max(DEFAULT_SOFT_EDGE[0] / pixel_size, DEFAULT_SOFT_EDGE[1]) if self.soft_edge is None
                else self.soft_edge / pixel_size)
        return extend, soft

    def resolved(self, pixel_size: float) -> MaskParameters:
        """The same parameters with the defaults filled in (Å) for ``pixel_size``."""
        extend, soft = self.in_pixels(pixel_size)
        return MaskParameters(extend * pixel_size, soft * pixel_size)


def _bounding_box(binary: np.ndarray, margin: int) -> tuple[slice, ...] | None:
    """Slices of the smallest box holding every True voxel, widened by ``margin`` (clipped to the map)."""
    box = []
    for axis in range(binary.ndim):
        other = tuple(a for a in range(binary.ndim) if a != axis)
        hit = np.flatnonzero(binary.any(axis=other))
        if hit.size == 0:
            return None
        box.append(slice(max(0, int(hit[0]) - margin), min(binary.shape[axis], int(hit[-1]) + 1 + margin)))
    return tuple(box)


def _squared_distance_within(binary: np.ndarray, radius: float) -> np.ndarray:
    """Squared Euclidean distance (pixels²) of every voxel to the nearest True voxel, exact up to
    ``radius`` pixels and infinite beyond: three passes of a minimum over at most ``radius`` shifts
    per side (a separable transform), much faster than a full distance transform for the few pixels
    of a mask's edge.  Float32 is exact here (sums of a few squared integers)."""
    reach = math.floor(radius)
    distance = np.where(binary, np.float32(0), np.float32(np.inf))
    for axis in range(3):
        moved = np.moveaxis(distance, axis, 0)
        source = moved.copy()
        for step in range(1, min(reach, moved.shape[0] - 1) + 1):
            cost = np.float32(step * step)
            np.minimum(moved[step:], source[:-step] + cost, out=moved[step:])
            np.minimum(moved[:-step], source[step:] + cost, out=moved[:-step])
    return distance


def soften(binary: np.ndarray, extend_pixels: float, soft_edge_pixels: float) -> np.ndarray:
    """``relion_mask_create``'s extension and raised-cosine edge of a binary map, in pixels (float32, [0, 1])."""
    binary = np.asarray(binary, dtype=bool)
    out = np.zeros(binary.shape, dtype=np.float32)
    box = _bounding_box(binary, math.ceil(extend_pixels + soft_edge_pixels) + 1)
    if box is None:
        return out
    crop = binary[box]
    if extend_pixels > 0:
        # RELION keeps the voxels strictly closer than N pixels
        crop = _squared_distance_within(crop, extend_pixels) < np.float32(extend_pixels ** 2)
    if soft_edge_pixels > 0:
        distance = np.sqrt(_squared_distance_within(crop, soft_edge_pixels))
        inside = distance < soft_edge_pixels
        edge = np.zeros(crop.shape, dtype=np.float32)
        # in double, as RELION: the voxels at half the width read exactly 0.5
        edge[inside] = 0.5 + 0.5 * np.cos(np.pi / soft_edge_pixels * distance[inside].astype(np.float64))
        out[box] = edge
    else:
        out[box] = crop
    return out


def soft_mask(binary: np.ndarray, pixel_size: float, parameters: MaskParameters = MaskParameters()) -> np.ndarray:
    """A RELION-ready soft mask (float32 in [0, 1]) of a binary map of ``pixel_size`` Å voxels."""
    extend, soft = parameters.in_pixels(pixel_size)
    return soften(binary, extend, soft)


def _linear_weights(coarse: int, fine: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For fine-grid samples start..stop-1 of a periodic axis: the coarse neighbours and the weight of
    the upper one.  Sample 0 of both grids sits at the box origin (as after Fourier resampling), the
    convention of the scale maps' own interpolation."""
    position = np.arange(start, stop, dtype=np.float64) * (coarse / fine)
    below = np.floor(position)
    return below.astype(np.intp) % coarse, (below.astype(np.intp) + 1) % coarse, (position - below).astype(np.float32)


def resample_selection(selection: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A boolean map on a coarse grid, on ``shape`` covering the same box: trilinear interpolation of
    the indicator, at least one half inside.  Only the selection's bounding box is interpolated."""
    shape = tuple(int(n) for n in shape)
    selection = np.asarray(selection, dtype=bool)
    if selection.shape == shape:
        return selection.copy()
    out = np.zeros(shape, dtype=bool)
    box = _bounding_box(selection, 1)
    if box is None:
        return out
    ranges = []
    for axis, part in enumerate(box):
        ratio = shape[axis] / selection.shape[axis]
        ranges.append((max(0, math.floor(part.start * ratio)), min(shape[axis], math.ceil(part.stop * ratio) + 1)))
    values = selection.astype(np.float32)
    for axis, (start, stop) in enumerate(ranges):
        low, high, weight = _linear_weights(selection.shape[axis], shape[axis], start, stop)
        view = [1, 1, 1]
        view[axis] = -1
        weight = weight.reshape(view)
        values = np.take(values, low, axis=axis) * (1 - weight) + np.take(values, high, axis=axis) * weight
    out[tuple(slice(a, b) for a, b in ranges)] = values >= 0.5
    return out


def region_mask(
    analysis: RegionAnalysis,
    numbers: Sequence[int] | None,
    shape: Sequence[int],
    pixel_size: float,
    parameters: MaskParameters = MaskParameters(),
) -> np.ndarray:
    """Soft mask (float32, [0, 1]) of the given regions (``None``: all, the variable mask) on the map's
    grid of ``shape`` and ``pixel_size`` Å, which covers the same box as the analysis grid."""
    box = np.asarray(analysis.shape) * np.asarray(analysis.spacing)
    if not np.allclose(np.asarray(shape) * pixel_size, box, rtol=1e-3):
        raise ValueError(f"a {tuple(shape)} map of {pixel_size} Å voxels does not cover the analysed box "
                         f"({tuple(round(float(b), 2) for b in box)} Å)")
    return soft_mask(resample_selection(analysis.selection(numbers), shape), pixel_size, parameters)

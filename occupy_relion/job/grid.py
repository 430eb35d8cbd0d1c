"""The maps' common grid, and the maps read onto it: headers, pixel size, mask, class maps.

Every map of a run (class maps, half maps, mask) must share one box and pixel size; each check
fails with one line naming the file.  The half-map arithmetic itself is the core's
(:mod:`occupy_relion.core.halves`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core import half_map_mean, half_map_noise
from ..errors import InputError
from ..mapio import VOXEL_TOLERANCE, MapHeader, read_header, read_map, sample_sd
from ..relion.inputs import ClassInput, Inputs
from ..text import size_text

#: largest relative difference between the model.star (or mask) pixel size and the maps' before it matters
PIXEL_WARNING = 0.01
#: how far outside [0, 1] a mask's values may stray (interpolation and float rounding) before it is refused
MASK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Grid:
    """The grid every map of the run shares."""

    header: MapHeader  # of the first map (the outputs take its geometry per class)
    pixel_size: float  # Å; from the model.star when the maps' headers have none

    @property
    def shape(self) -> tuple[int, int, int]:
        """(z, y, x) voxels."""
        return self.header.shape


def check_grid(inputs: Inputs, classes: list[ClassInput], warn: Callable[[str], None]) -> Grid:
    """Check all maps (half maps too) share one grid and pixel size; warn about the model.star's."""
    first: MapHeader | None = None
    first_path = ""
    for cls in classes:
        for path in (cls.map_path, *(cls.half_maps or ())):
            header = read_header(path)
            if not header.isotropic:
                raise InputError(f"{path}: voxel sizes differ between axes {header.voxel_size}")
            if first is None:
                first, first_path = header, path
            elif header.shape != first.shape:
                raise InputError(f"{path}: size {size_text(header.shape)} differs from {first_path} "
                                 f"({size_text(first.shape)})")
            elif abs(header.pixel_size - first.pixel_size) > VOXEL_TOLERANCE * max(first.pixel_size, 1e-12):
                raise InputError(f"{path}: pixel size {header.pixel_size:g} Å differs from {first_path} "
                                 f"({first.pixel_size:g} Å)")
    assert first is not None, "check_grid needs at least one class"
    pixel_size = first.pixel_size
    if pixel_size <= 0:
        if not inputs.pixel_size:
            raise InputError(f"{first_path}: no voxel size in the header")
        warn(f"{first_path}: no voxel size in the header; using {inputs.pixel_size:g} Å from {inputs.model_path}")
        pixel_size = inputs.pixel_size
    elif inputs.pixel_size and abs(inputs.pixel_size - pixel_size) > PIXEL_WARNING * pixel_size:
        warn(f"{first_path}: voxel size {pixel_size:g} Å differs from _rlnPixelSize "
             f"{inputs.pixel_size:g} Å of {inputs.model_path}; using the map's")
    return Grid(first, pixel_size)


def read_mask(path: str | None, grid: Grid) -> np.ndarray | None:
    """The solvent-definition mask on the maps' grid, or None when none was given."""
    if not path:
        return None
    mask, header = read_map(path)
    if mask.shape != grid.shape:
        raise InputError(f"{path}: mask size {size_text(mask.shape)} differs from the maps' {size_text(grid.shape)}")
    if header.pixel_size > 0 and abs(header.pixel_size - grid.pixel_size) > PIXEL_WARNING * grid.pixel_size:
        raise InputError(f"{path}: mask pixel size {header.pixel_size:g} Å differs from the maps' "
                         f"{grid.pixel_size:g} Å")
    low, high = float(mask.min()), float(mask.max())
    if not high > 0:
        raise InputError(f"{path}: the mask is empty (no value above 0)")
    if low < -MASK_TOLERANCE or high > 1 + MASK_TOLERANCE:
        raise InputError(f"{path}: mask values from {low:.3g} to {high:.3g}; a mask holds values in [0, 1] "
                         "(is it a map rather than a mask?)")
    if low >= 1 - MASK_TOLERANCE:
        raise InputError(f"{path}: the mask is 1 everywhere, so it separates nothing from the solvent")
    return mask


@dataclass(frozen=True)
class ClassMaps:
    """One class's map, its pure-noise map from the half maps (or None) and the map's header."""

    volume: np.ndarray
    noise: np.ndarray | None
    header: MapHeader
    identical_halves: bool = False  # half maps were given but differ by a constant: no noise map


def read_class(cls: ClassInput, with_noise: bool = True, unit: float = 1.0) -> ClassMaps:
    """The map to analyse and, when ``with_noise`` and there are half maps, the noise from them.

    The map is the class map, or the mean of the halves when the class map is itself half 1.  Both
    are in units of ``unit`` (a power of two, see :func:`map_unit`: dividing is exact).
    """
    if cls.half_maps is None or not (with_noise or cls.average_halves):
        volume, header = read_map(cls.map_path)
        return ClassMaps(_in_unit(volume, unit), None, header)
    mean, noise, header = _from_halves(cls.half_maps, with_noise, cls.average_halves)
    if mean is None:
        volume, header = read_map(cls.map_path)  # read after the halves are gone: at most 3 maps at once
    else:
        volume = mean
    return ClassMaps(_in_unit(volume, unit), None if noise is None else _in_unit(noise, unit), header,
                     identical_halves=with_noise and noise is None)


def _in_unit(array: np.ndarray, unit: float) -> np.ndarray:
    """``array`` divided by ``unit`` in place (exact for a power of two)."""
    if unit != 1.0:
        array *= np.float32(1.0 / unit)
    return array


def map_unit(path: str) -> float:
    """The unit the run works in: the power of two nearest the map's sd (from a sparse sample).

    Local scale does not depend on the unit of the density, but float32 arithmetic does: a map with
    values near 1e35 overflows in the filters' sums.  Working in units of about its sd keeps every
    map in range; a power of two makes the division and the restoring exact, so outputs are the
    same bits as without it wherever both work.
    """
    sd = sample_sd(path)
    if not (math.isfinite(sd) and sd > 0):
        return 1.0
    return float(2.0 ** round(math.log2(sd)))


def _from_halves(paths: tuple[str, str], with_noise: bool,
                 with_mean: bool) -> tuple[np.ndarray | None, np.ndarray | None, MapHeader]:
    """(mean or None, noise or None, header of half 1); half 1's buffer becomes the mean (no extra copy)."""
    half1, header = read_map(paths[0])
    half2, _ = read_map(paths[1])
    noise = half_map_noise(half1, half2) if with_noise else None
    mean = half_map_mean(half1, half2, out=half1) if with_mean else None
    return mean, noise, header


def empty_reason(volume: np.ndarray) -> str | None:
    """Why a class map holds nothing to analyse (an empty class), or None."""
    if not volume.any():
        return "all zeros"
    if not volume.max() > volume.min():
        return "constant"
    return None

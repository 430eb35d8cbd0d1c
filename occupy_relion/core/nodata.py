"""Voxels that carry no data: flattened, zero-padded or masked-out solvent.

RELION's ``--flatten_solvent --zero_mask`` sets everything outside a soft sphere to exactly 0 and scales
the noise down over the sphere's soft edge; a deposited map may be masked (exactly, softly, or with a
fall-off that never reaches a constant) or padded.  None of these voxels is solvent noise: they must not
shape the solvent model, the noise floor or the confidence, and the modified maps leave them as they are.

They are found from the local spread of the map (its standard deviation over a cube about one
low-pass length wide, on the working grid): solvent noise has a typical spread (:func:`typical_spread`),
the molecule more, and masked voxels far less.  Voxels sharing one exact value over a sizeable part
of the box are no data whatever their neighbourhood.  Nothing depends on the map's intensity or
offset, or on how much of the box is empty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_opening, uniform_filter1d

from . import filters

#: a voxel whose local spread is below this share of the typical spread carries no data (noise inside
#: a soft mask's fall-off at 1/4 of its level or less; unmasked noise never dips this low over a cube
#: of about 100 correlated samples: on real maps its 1st percentile is 0.5-0.6 of the mode)
NO_DATA_SPREAD = 0.25

#: share of the box one exact value must hold to count as flattened (a program set it there)
FLAT_SHARE = 0.02


@dataclass(frozen=True)
class NoData:
    """The voxels of the working grid that carry no data, and the exactly flattened value at full size."""

    grid: np.ndarray  # bool, working grid: True where there is no data
    constant: float | None  # the value a program flattened voxels to (full size: exactly this), or None
    spread: float  # typical local standard deviation of the data (map units)

    @property
    def fraction(self) -> float:
        """Share of the working grid without data."""
        return float(np.count_nonzero(self.grid)) / self.grid.size

    @property
    def any(self) -> bool:
        """Whether any voxel carries no data."""
        return bool(self.grid.any())


def flat_value(volume: np.ndarray) -> float | None:
    """The one exact value shared by more than :data:`FLAT_SHARE` of the box in a connected block
    (flattened solvent, zero padding), or None.

    The most common value of an evenly strided sample is the candidate; it counts only when, in a few
    planes across one of the axes, most of its voxels have it in an in-plane neighbour too, so the
    commonest level of a quantised map (8-bit data: scattered through the solvent) is not taken for a
    masked region.
    """
    sample = volume.reshape(-1)[:: max(1, volume.size // 200_000)]
    values, counts = np.unique(sample, return_counts=True)
    if counts.max() <= FLAT_SHARE * sample.size:
        return None
    value = values[np.argmax(counts)]
    for axis in range(3):  # a few planes across each axis are enough (no full-size comparison)
        step = max(1, volume.shape[axis] // 8)
        planes = np.moveaxis(volume, axis, 0)[::step] == value
        pairs = max(np.count_nonzero(planes[:, 1:] & planes[:, :-1]),
                    np.count_nonzero(planes[:, :, 1:] & planes[:, :, :-1]))
        if pairs > 0.5 * np.count_nonzero(planes):
            return float(value)
    return None


def local_spread(grid: np.ndarray, size: int, threads: int = 1) -> np.ndarray:
    """Standard deviation of ``grid`` over a cube of ``size`` voxels about each voxel (float32)."""
    mean = filters.separable_filter(uniform_filter1d, grid, (size,) * 3, threads)
    square = np.square(grid, dtype=np.float32)
    filters.separable_filter(uniform_filter1d, square, (size,) * 3, threads, output=square)
    square -= np.square(mean, out=mean)
    del mean
    return np.sqrt(np.maximum(square, 0, out=square), out=square)


def _log_mode(values: np.ndarray) -> float:
    """Mode of the log-histogram of positive ``values`` (0.02-decade bins, lightly smoothed)."""
    if values.size < 100:
        return float(values.max()) if values.size else 0.0
    if values.size > 2_000_000:
        values = values[:: int(np.ceil(values.size / 2_000_000))]
    logs = np.log10(values, dtype=np.float64)
    low, high = np.percentile(logs, [0.5, 99.5])
    if not high > low:
        return float(10 ** low)
    bins = max(20, int(np.ceil((high - low) / 0.02)))
    counts, edges = np.histogram(logs, bins=bins, range=(low, high))
    smooth = np.convolve(counts, np.ones(7) / 7, mode="same")
    peak = int(np.argmax(smooth))
    return float(10 ** (0.5 * (edges[peak] + edges[peak + 1])))


def typical_spread(spread: np.ndarray) -> float:
    """The spread of the box's solvent noise: the smaller of the mode of every positive spread (the most
    common texture) and the mode of the quieter half of the spreads that are not far below it.

    The first is the noise in a box with plenty of solvent, however much of it is masked; in a tight
    crop that is mostly molecule it is the molecule's texture, and the second finds the quiet parts.
    """
    values = spread[spread > 0]
    first = _log_mode(values)
    rest = values[values >= NO_DATA_SPREAD * first]
    if rest.size == 0:
        return first
    return min(first, _log_mode(rest[rest <= np.median(rest)]))


def find_no_data(
    volume: np.ndarray,
    pixel_size: float,
    work_shape: tuple[int, int, int],
    lowpass: float,
    threads: int = 1,
    resampled: np.ndarray | None = None,
) -> NoData:
    """The no-data voxels of ``volume`` on the working grid ``work_shape`` (see the module docstring).

    The spread is taken on the unfiltered map resampled onto the working grid (band-limited to that
    grid's Nyquist; ``resampled`` if the caller has it), over a cube about ``lowpass`` Å wide (at
    least 3 voxels).
    """
    constant = flat_value(volume)
    same = tuple(work_shape) == tuple(volume.shape)
    grid = (volume if same else resampled if resampled is not None
            else filters.resample_lowpass(volume, pixel_size, work_shape, None, threads))
    spacing = float(np.mean(np.asarray(volume.shape) * pixel_size / np.asarray(work_shape)))
    size = max(3, int(round(lowpass / spacing)) | 1)
    spread = local_spread(grid, size, threads)
    flat = None
    if constant is not None:
        flat = volume == np.float32(constant)
        if not same:
            flat = filters.resample_lowpass(flat.astype(np.float32), pixel_size, work_shape, None, threads) > 0.5
        spread[flat] = 0
    typical = typical_spread(spread)
    # a masked region is an extended one: a quiet spot a few voxels across (in a box that is all
    # molecule) is not, so only what a 3-voxel cube fits into counts
    no_data = spread < np.float32(NO_DATA_SPREAD * typical)
    if no_data.any():
        no_data = binary_opening(no_data, np.ones((3, 3, 3), bool))
    if flat is not None:
        no_data |= flat
    return NoData(no_data, constant, typical)


def _set_rows(target: np.ndarray, volume: np.ndarray, no_data: NoData, value: float, threads: int) -> None:
    """Set ``target`` (full size) to ``value`` on the full-size no-data voxels of ``volume``, slab by slab."""
    grid = no_data.grid.astype(np.float32)
    fill = np.float32(value)

    def work(rows: range) -> None:
        interpolator = filters.RowInterpolator(grid, volume.shape)
        for start in range(rows.start, rows.stop, 8):
            stop = min(start + 8, rows.stop)
            gate = full_size_rows(no_data, volume[start:stop], interpolator.rows(start, stop))
            target[start:stop][gate] = fill

    filters.run_in_slabs(work, volume.shape[0], threads)


def filled(volume: np.ndarray, no_data: NoData, value: float, threads: int = 1) -> np.ndarray:
    """A copy of ``volume`` with its no-data voxels (full size, as :func:`full_size_rows`) set to ``value``.

    Low-passed, a masked region at another level than the solvent would smear a step into the data
    beside it (a halo of false confidence); filled with the solvent mean it has no edge at all.
    """
    out = np.array(volume, dtype=np.float32)
    _set_rows(out, volume, no_data, value, threads)
    return out


def zero_where_no_data(target: np.ndarray, volume: np.ndarray, no_data: NoData | None, threads: int = 1) -> None:
    """Set ``target`` (full size, e.g. a solvent weight) to 0 on the no-data voxels of ``volume``, in place."""
    if no_data is not None and no_data.any:
        _set_rows(target, volume, no_data, 0.0, threads)


def full_size_rows(no_data: NoData, volume_rows: np.ndarray, grid_rows: np.ndarray) -> np.ndarray:
    """No-data voxels of some rows of the full-size map: the exactly flattened ones, and those whose
    interpolated working-grid mask (``grid_rows``, 0..1) is above one half."""
    gate = grid_rows > 0.5
    if no_data.constant is not None:
        gate |= volume_rows == np.float32(no_data.constant)
    return gate

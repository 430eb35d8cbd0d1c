"""Fourier resampling, low-pass filtering, spherical maximum filter and linear upsampling.

Everything here works on float32 arrays and takes a ``threads`` count that is handed to
``scipy.fft`` (``workers``) or used to split the work into slabs.  Maps are treated as periodic,
as a Fourier-filtered map is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.fft
from scipy.ndimage import maximum_filter1d

Shape3 = tuple[int, int, int]

#: Width of the raised-cosine edge of the low-pass, as a fraction of the cut-off frequency.
#: The filter passes 1/lowpass at half amplitude and is zero above (1 + EDGE)/lowpass.
LOWPASS_EDGE = 0.2

#: Slab thickness (planes) of the first, full-size FFT pass; keeps temporaries small.
_SLAB = 8


def lowpass_transfer(frequency: np.ndarray, lowpass: float | None) -> np.ndarray:
    """Raised-cosine low-pass transfer function of |frequency| (1/Å), half amplitude at 1/lowpass.

    A soft edge avoids the ringing of a hard cut-off.  ``lowpass=None`` passes everything.
    """
    if lowpass is None:
        return np.ones_like(frequency, dtype=np.float32)
    cutoff = 1.0 / lowpass
    lo, hi = cutoff * (1 - LOWPASS_EDGE), cutoff * (1 + LOWPASS_EDGE)
    out = (frequency <= lo).astype(np.float32)
    edge = (frequency > lo) & (frequency < hi)
    out[edge] = 0.5 + 0.5 * np.cos(np.pi * (frequency[edge] - lo) / (hi - lo))
    return out


def working_shape(shape: Sequence[int], pixel_size: float, target_pixel: float) -> Shape3:
    """Grid covering the same box as ``shape`` with voxels close to ``target_pixel`` Å (at least 8 a side)."""
    return tuple(max(8, int(round(n * pixel_size / target_pixel))) for n in shape)  # type: ignore[return-value]


def _shared_frequencies(old_size: int, new_size: int) -> tuple[int, int]:
    """How many non-negative and negative frequencies of a full FFT axis both grids hold.

    The Nyquist bin of the smaller even grid stands for +f and -f at once, so it is left out.
    """
    keep = min(old_size, new_size)
    positive = (keep + 1) // 2
    negative = keep - positive - (1 if keep % 2 == 0 and old_size != new_size else 0)
    return positive, negative


def _copy_shared(src: np.ndarray, dst: np.ndarray, axis: int) -> None:
    """Copy the frequencies ``src`` and ``dst`` share along full FFT ``axis`` (``dst`` pre-zeroed)."""
    positive, negative = _shared_frequencies(src.shape[axis], dst.shape[axis])
    index = [slice(None)] * src.ndim
    index[axis] = slice(0, positive)
    dst[tuple(index)] = src[tuple(index)]
    if negative > 0:
        index[axis] = slice(-negative, None)
        dst[tuple(index)] = src[tuple(index)]


def _kept_half_bins(old_size: int, new_size: int) -> int:
    """Bins of the rfft (half) axis both grids hold, leaving out an ambiguous Nyquist bin."""
    if new_size == old_size:
        return old_size // 2 + 1
    smaller = min(old_size, new_size)
    return smaller // 2 + (0 if smaller % 2 == 0 else 1)


def resample_lowpass(
    volume: np.ndarray,
    pixel_size: float,
    out_shape: Sequence[int],
    lowpass: float | None,
    threads: int = 1,
) -> np.ndarray:
    """Low-pass ``volume`` to ``lowpass`` Å and resample it onto ``out_shape`` covering the same box.

    The low-passed map is band-limited, so a grid whose Nyquist lies above the filter's edge holds it
    exactly.  The full-size FFT is done one axis at a time, in slabs spread over ``threads``, keeping
    only the frequencies the output grid holds after each axis, so no full-size complex copy is made.
    Values keep their real-space amplitude.
    """
    (out,) = resample_lowpasses(volume, pixel_size, out_shape, (lowpass,), threads)
    return out


def resample_lowpasses(
    volume: np.ndarray,
    pixel_size: float,
    out_shape: Sequence[int],
    lowpasses: Sequence[float | None],
    threads: int = 1,
) -> list[np.ndarray]:
    """:func:`resample_lowpass` of ``volume`` for each of ``lowpasses`` from one forward transform
    (each output the same bit for bit as its own call)."""
    volume = np.asarray(volume, dtype=np.float32)
    n0, n1, n2 = volume.shape
    m0, m1, m2 = (int(s) for s in out_shape)
    half2 = m2 // 2 + 1
    keep2 = _kept_half_bins(n2, m2)
    partial = np.zeros((n0, m1, half2), dtype=np.complex64)

    def first_axes(rows: range) -> None:
        for start in range(rows.start, rows.stop, _SLAB):
            stop = min(start + _SLAB, rows.stop)
            slab = scipy.fft.rfft(volume[start:stop], axis=2)[..., :keep2]
            slab = scipy.fft.fft(slab, axis=1, overwrite_x=True)
            _copy_shared(slab, partial[start:stop, :, :keep2], axis=1)  # noqa: F821 (bound above; freed by del below)

    run_in_slabs(first_axes, n0, threads)
    partial = scipy.fft.fft(partial, axis=0, workers=threads, overwrite_x=True)
    if m0 == n0:
        spectrum = partial
    else:
        spectrum = np.zeros((m0, m1, half2), dtype=np.complex64)
        _copy_shared(partial, spectrum, axis=0)
    del partial  # the full-height spectrum: freed before the inverse transform makes the output
    outputs = []
    for k, lowpass in enumerate(lowpasses):
        last = k == len(lowpasses) - 1
        this = spectrum if last else spectrum.copy()  # the inverse transform overwrites its input
        if lowpass is not None:
            this *= lowpass_transfer(radial_frequency((m0, m1, m2), _extent(volume.shape, pixel_size)), lowpass)
        out = scipy.fft.irfftn(this, s=(m0, m1, m2), axes=(0, 1, 2), workers=threads, overwrite_x=True)
        del this
        out *= np.float32((m0 * m1 * m2) / (n0 * n1 * n2))
        outputs.append(out.astype(np.float32, copy=False))
    return outputs


def _extent(shape: Sequence[int], pixel_size: float) -> np.ndarray:
    """Box edge lengths in Å."""
    return np.asarray(shape, dtype=np.float64) * pixel_size


def radial_frequency(shape: Sequence[int], extent: np.ndarray | Sequence[float]) -> np.ndarray:
    """|spatial frequency| (1/Å) on the rfft half-grid of ``shape`` for a box of ``extent`` Å."""
    n0, n1, n2 = shape
    f0 = (np.fft.fftfreq(n0) * n0 / extent[0]).astype(np.float32)
    f1 = (np.fft.fftfreq(n1) * n1 / extent[1]).astype(np.float32)
    f2 = (np.fft.rfftfreq(n2) * n2 / extent[2]).astype(np.float32)
    return np.sqrt(f0[:, None, None] ** 2 + f1[None, :, None] ** 2 + f2[None, None, :] ** 2)


#: a ball includes grid points up to this factor beyond its radius, so that a working grid a hair
#: coarser than asked for (rounding of the box to whole voxels) keeps the points at the radius
BALL_TOLERANCE = 1.02


def ball_offsets(radius: float, spacing: Sequence[float]) -> list[tuple[int, int, int]]:
    """(dx, dy, half-length along z) runs that make up a ball of ``radius`` Å on a grid of ``spacing`` Å."""
    radius = radius * BALL_TOLERANCE
    s0, s1, s2 = spacing
    r0, r1 = int(np.floor(radius / s0)), int(np.floor(radius / s1))
    runs = []
    for d0 in range(-r0, r0 + 1):
        for d1 in range(-r1, r1 + 1):
            rest = radius ** 2 - (d0 * s0) ** 2 - (d1 * s1) ** 2
            if rest < 0:
                continue
            runs.append((d0, d1, int(np.floor(np.sqrt(rest) / s2 + 1e-9))))
    return runs


def ball_voxel_count(radius: float, spacing: Sequence[float]) -> int:
    """Number of grid points within ``radius`` Å of a grid point."""
    return sum(2 * h + 1 for _, _, h in ball_offsets(radius, spacing))


#: output planes per slab of the ball maximum (each slab also reads a halo of the ball's radius)
_BALL_SLAB = 16


def ball_maximum(
    volume: np.ndarray,
    radius: float,
    spacing: Sequence[float],
    threads: int = 1,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Maximum over a ball of ``radius`` Å around every voxel (periodic boundaries).

    The ball is split into runs along the last axis: one 1-D running maximum per run length (van Herk,
    O(N) each) and then a maximum over shifted views, so the cost is O(N · r²) instead of O(N · r³).
    Works in slabs of planes (with a halo) spread over ``threads``: temporaries stay slab-sized.
    """
    volume = np.asarray(volume, dtype=np.float32)
    runs = ball_offsets(radius, spacing)
    halo0 = max(abs(d0) for d0, _, _ in runs)
    halo1 = max(abs(d1) for _, d1, _ in runs)
    lengths = sorted({h for _, _, h in runs})
    n0, n1, _ = volume.shape
    out = np.empty(volume.shape, dtype=np.float32)

    def work(rows: range) -> None:
        for start in range(rows.start, rows.stop, _BALL_SLAB):
            stop = min(start + _BALL_SLAB, rows.stop)
            block = volume[np.arange(start - halo0, stop + halo0) % n0]
            if halo1:
                block = np.pad(block, ((0, 0), (halo1, halo1), (0, 0)), mode="wrap")
            line_max = {h: block if h == 0 else maximum_filter1d(block, 2 * h + 1, axis=2, mode="wrap")
                        for h in lengths}
            target = out[start:stop]
            target.fill(-np.inf)
            for d0, d1, h in runs:
                view = line_max[h][halo0 + d0:halo0 + d0 + stop - start, halo1 + d1:halo1 + d1 + n1]
                np.maximum(target, view, out=target)
            if check:
                check()

    run_in_slabs(work, n0, threads)
    return out


def ball_neighbours(points: tuple[np.ndarray, np.ndarray, np.ndarray], shape: Sequence[int], radius: float,
                    spacing: Sequence[float]) -> np.ndarray:
    """Flat indices (offsets × points) of the grid points of a ball of ``radius`` Å around each of
    ``points`` (index arrays) on a periodic grid of ``shape``: the very points :func:`ball_maximum`
    takes the maximum over, so ``values[neighbours].max(axis=0)`` equals it there, bit for bit."""
    n0, n1, n2 = (int(n) for n in shape)
    p0, p1, p2 = (np.asarray(p, dtype=np.intp) for p in points)
    rows = []
    for d0, d1, h in ball_offsets(radius, spacing):
        base = ((p0 + d0) % n0) * (n1 * n2) + ((p1 + d1) % n1) * n2
        for d2 in range(-h, h + 1):
            rows.append(base + (p2 + d2) % n2)
    return np.stack(rows)


def separable_filter(filter1d: Callable[..., object], volume: np.ndarray, sizes: Sequence[int],
                     threads: int = 1, output: np.ndarray | None = None, mode: str = "wrap") -> np.ndarray:
    """``filter1d`` (a scipy.ndimage 1-D filter: ``uniform_filter1d``, ``maximum_filter1d``) of window
    ``sizes[axis]`` along axes 0, 1, 2 in turn, as scipy's n-D filters do, each pass split over
    ``threads`` blocks of another axis: the lines are independent, so the result is the same bit for
    bit.  Float32 in and out; ``output`` may be ``volume`` (in place)."""
    out = np.empty(volume.shape, dtype=np.float32) if output is None else output
    source = volume
    for axis in range(3):
        split = 1 if axis == 0 else 0

        def work(rows: range, axis: int = axis, split: int = split, source: np.ndarray = source) -> None:
            part = [slice(None)] * 3
            part[split] = slice(rows.start, rows.stop)
            filter1d(source[tuple(part)], int(sizes[axis]), axis=axis, output=out[tuple(part)], mode=mode)

        run_in_slabs(work, volume.shape[split], threads)
        source = out
    return out


def run_in_slabs(work: Callable[[range], None], length: int, threads: int) -> None:
    """Call ``work`` on ``threads`` contiguous row ranges in parallel (numpy releases the GIL)."""
    threads = max(1, min(threads, length))
    bounds = np.linspace(0, length, threads + 1).astype(int)
    ranges = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if len(ranges) == 1:
        work(ranges[0])
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        list(pool.map(work, ranges))


def lookup_uniform(values: np.ndarray, start: float, step: float, table: np.ndarray, threads: int = 1) -> np.ndarray:
    """Linear interpolation of ``table`` (sampled at start, start + step, ...) at ``values``, in float32.

    Values outside the table take its end values.  Much faster than ``np.interp`` on large maps: no
    float64 copies and no search, as the samples are uniform.
    """
    table = np.asarray(table, dtype=np.float32)
    rise = np.append(np.diff(table), np.float32(0))
    out = np.empty(values.shape, dtype=np.float32)
    flat_in, flat_out = values.reshape(-1), out.reshape(-1)
    last = np.float32(len(table) - 1)
    chunk = 1 << 18

    def work(blocks: range) -> None:
        for b in blocks:
            part = slice(b * chunk, min((b + 1) * chunk, flat_in.size))
            position = flat_in[part] - np.float32(start)
            position *= np.float32(1 / step)
            np.clip(position, 0, last, out=position)
            index = position.astype(np.int32)
            position -= index
            position *= np.take(rise, index)
            position += np.take(table, index)
            flat_out[part] = position

    run_in_slabs(work, -(-flat_in.size // chunk), threads)
    return out


def _linear_table(old: int, new: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Periodic linear interpolation from ``old`` to ``new`` samples: lower index, upper index, weight."""
    position = np.arange(new, dtype=np.float64) * (old / new)
    lower = np.floor(position).astype(np.intp)
    weight = (position - lower).astype(np.float32)
    return lower % old, (lower + 1) % old, weight


class RowInterpolator:
    """Rows (first axis) of the periodic trilinear resampling of a coarse grid onto a full-size shape.

    Sample 0 of both grids is at the box origin, as after Fourier resampling.  Only the coarse planes
    the asked rows need are interpolated in-plane, and kept while the next rows may need them; every
    buffer is reused, so making (or using) a full-size map slab by slab allocates almost nothing.  One
    interpolator per thread.
    """

    def __init__(self, coarse: np.ndarray, shape: Sequence[int]):
        self.coarse = np.asarray(coarse, dtype=np.float32)
        self.shape = tuple(int(n) for n in shape)
        n0, n1, n2 = self.shape
        m0, m1, _ = self.coarse.shape
        self.lo0, self.hi0, self.w0 = _linear_table(m0, n0)
        self.lo1, self.hi1, w1 = _linear_table(m1, n1)
        self.lo2, self.hi2, self.w2 = _linear_table(self.coarse.shape[2], n2)
        self.w1 = w1[:, None]
        self.planes: dict[int, np.ndarray] = {}
        self.spare: list[np.ndarray] = []
        self.lines_lo = np.empty((m1, n2), np.float32)
        self.lines_hi = np.empty((m1, n2), np.float32)
        self.upper = np.empty((n1, n2), np.float32)

    def _plane(self, k: int) -> np.ndarray:
        plane = self.spare.pop() if self.spare else np.empty(self.shape[1:], np.float32)
        np.take(self.coarse[k], self.lo2, axis=1, out=self.lines_lo)
        np.take(self.coarse[k], self.hi2, axis=1, out=self.lines_hi)
        self.lines_hi -= self.lines_lo
        self.lines_hi *= self.w2
        self.lines_lo += self.lines_hi
        np.take(self.lines_lo, self.lo1, axis=0, out=plane)
        np.take(self.lines_lo, self.hi1, axis=0, out=self.upper)
        self.upper -= plane
        self.upper *= self.w1
        plane += self.upper
        return plane

    def rows(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``start:stop`` of the full-size map (into ``out`` when given)."""
        if self.coarse.shape == self.shape:
            if out is None:
                return self.coarse[start:stop]
            out[...] = self.coarse[start:stop]
            return out
        needed = set(self.lo0[start:stop].tolist()) | set(self.hi0[start:stop].tolist())
        for k in [k for k in self.planes if k not in needed]:
            self.spare.append(self.planes.pop(k))
        for k in sorted(needed - self.planes.keys()):
            self.planes[k] = self._plane(k)
        if out is None:
            out = np.empty((stop - start,) + self.shape[1:], np.float32)
        for i in range(start, stop):
            target = out[i - start]
            np.subtract(self.planes[self.hi0[i]], self.planes[self.lo0[i]], out=target)
            target *= self.w0[i]
            target += self.planes[self.lo0[i]]
        return out


#: output planes per slab when upsampling
_ROWS = 8


def upsample_linear(a: np.ndarray, shape: Sequence[int], threads: int = 1) -> np.ndarray:
    """Periodic trilinear resampling of a coarse grid onto ``shape`` covering the same box."""
    shape = tuple(int(n) for n in shape)
    if tuple(a.shape) == shape:
        return np.array(a, dtype=np.float32)
    out = np.empty(shape, dtype=np.float32)

    def work(rows: range) -> None:
        interpolator = RowInterpolator(a, shape)
        for start in range(rows.start, rows.stop, _ROWS):
            stop = min(start + _ROWS, rows.stop)
            interpolator.rows(start, stop, out=out[start:stop])

    run_in_slabs(work, shape[0], threads)
    return out

"""Fourier resampling, low-pass filtering, spherical maximum filter and linear upsampling.

Everything here works on float32 arrays and takes a ``threads`` count that is handed to
``scipy.fft`` (``workers``) or used to split the work into slabs.  Maps are treated as periodic,
as a Fourier-filtered map is.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np
import scipy.fft
from scipy.ndimage import maximum_filter1d

Shape3 = tuple[int, int, int]

#: Width of the raised-cosine edge of the low-pass, as a fraction of the cut-off frequency.
#: The filter passes 1/lowpass at half amplitude and is zero above (1 + EDGE)/lowpass.
LOWPASS_EDGE = 0.2

#: Slab thickness (planes) of the first, full-size FFT pass; keeps temporaries small.
_SLAB = 16


def lowpass_transfer(frequency: np.ndarray, lowpass: float | None) -> np.ndarray:
    """Raised-cosine low-pass transfer function of |frequency| (1/Å), half amplitude at 1/lowpass.

    A soft edge avoids the ringing of a hard cut-off.  ``lowpass=None`` passes everything.
    """
    if lowpass is None:
        return np.ones_like(frequency, dtype=np.float32)
    cutoff = 1.0 / lowpass
    lo, hi = cutoff * (1 - LOWPASS_EDGE), cutoff * (1 + LOWPASS_EDGE)
    ramp = np.clip((frequency - lo) / (hi - lo), 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * ramp)).astype(np.float32)


def working_shape(shape: Sequence[int], pixel_size: float, target_pixel: float) -> Shape3:
    """Grid covering the same box as ``shape`` with voxels close to ``target_pixel`` Å (at least 8 a side)."""
    return tuple(max(8, int(round(n * pixel_size / target_pixel))) for n in shape)  # type: ignore[return-value]


def _crop_or_pad_axis(spectrum: np.ndarray, axis: int, new_size: int) -> np.ndarray:
    """Keep the frequencies a grid of ``new_size`` can hold along a full (non-half) FFT axis."""
    old_size = spectrum.shape[axis]
    if new_size == old_size:
        return spectrum
    keep = min(old_size, new_size)
    positive = (keep + 1) // 2  # DC and positive frequencies
    negative = keep - positive
    if keep % 2 == 0:
        # the Nyquist bin of the smaller even grid stands for +f and -f at once: leave it empty
        negative -= 1
    out_shape = list(spectrum.shape)
    out_shape[axis] = new_size
    out = np.zeros(out_shape, dtype=spectrum.dtype)
    src = [slice(None)] * spectrum.ndim
    dst = [slice(None)] * spectrum.ndim
    src[axis] = dst[axis] = slice(0, positive)
    out[tuple(dst)] = spectrum[tuple(src)]
    if negative > 0:
        src[axis] = dst[axis] = slice(-negative, None)
        out[tuple(dst)] = spectrum[tuple(src)]
    return out


def resample_lowpass(
    volume: np.ndarray,
    pixel_size: float,
    out_shape: Sequence[int],
    lowpass: float | None,
    threads: int = 1,
) -> np.ndarray:
    """Low-pass ``volume`` to ``lowpass`` Å and resample it onto ``out_shape`` covering the same box.

    The low-passed map is band-limited, so a grid whose Nyquist lies above the filter's edge holds it
    exactly: the full-size FFT is done one axis at a time, cropping after each axis and working in
    slabs, so no full-size complex copy is ever made.  Values keep their real-space amplitude.
    """
    volume = np.asarray(volume, dtype=np.float32)
    n0, n1, n2 = volume.shape
    m0, m1, m2 = (int(s) for s in out_shape)
    half2 = m2 // 2 + 1
    # pass 1: rfft along the last axis, slab by slab, then along axis 1; crop both at once
    partial = np.empty((n0, m1, half2), dtype=np.complex64)
    keep2 = min(half2, n2 // 2 + 1)
    if m2 < n2 and m2 % 2 == 0:
        keep2 = min(keep2, m2 // 2)  # the target's Nyquist bin would alias: leave it empty
    if n2 % 2 == 0 and m2 > n2:
        keep2 = min(keep2, n2 // 2)  # the source's Nyquist bin is ambiguous: drop it
    for start in range(0, n0, _SLAB):
        slab = scipy.fft.rfft(volume[start:start + _SLAB], axis=2, workers=threads)
        trimmed = np.zeros(slab.shape[:2] + (half2,), dtype=np.complex64)
        trimmed[..., :keep2] = slab[..., :keep2]
        trimmed = scipy.fft.fft(trimmed, axis=1, workers=threads, overwrite_x=True)
        partial[start:start + _SLAB] = _crop_or_pad_axis(trimmed, 1, m1)
    partial = scipy.fft.fft(partial, axis=0, workers=threads, overwrite_x=True)
    spectrum = _crop_or_pad_axis(partial, 0, m0)
    del partial
    if lowpass is not None:
        spectrum *= lowpass_transfer(radial_frequency((m0, m1, m2), _extent(volume.shape, pixel_size)), lowpass)
    out = scipy.fft.irfftn(spectrum, s=(m0, m1, m2), axes=(0, 1, 2), workers=threads)
    out *= np.float32((m0 * m1 * m2) / (n0 * n1 * n2))
    return out.astype(np.float32, copy=False)


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


def ball_offsets(radius: float, spacing: Sequence[float]) -> list[tuple[int, int, int]]:
    """(dx, dy, half-length along z) runs that make up a ball of ``radius`` Å on a grid of ``spacing`` Å."""
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


def ball_maximum(
    volume: np.ndarray,
    radius: float,
    spacing: Sequence[float],
    threads: int = 1,
    check: Callable[[], None] | None = None,
) -> np.ndarray:
    """Maximum over a ball of ``radius`` Å around every voxel (periodic boundaries).

    The ball is split into runs along the last axis: one 1-D running maximum per run length (van Herk,
    O(N) each) and then a maximum over shifted views.  Cost is O(N · r²) instead of O(N · r³).
    """
    volume = np.asarray(volume, dtype=np.float32)
    runs = ball_offsets(radius, spacing)
    pad0 = max(abs(d0) for d0, _, _ in runs)
    pad1 = max(abs(d1) for _, d1, _ in runs)
    lengths = sorted({h for _, _, h in runs})
    line_max = {}
    for h in lengths:
        line_max[h] = (
            volume if h == 0 else maximum_filter1d(volume, size=2 * h + 1, axis=2, mode="wrap")
        )
        if pad0 or pad1:
            line_max[h] = np.pad(line_max[h], ((pad0, pad0), (pad1, pad1), (0, 0)), mode="wrap")
        if check:
            check()
    n0, n1, _ = volume.shape
    out = np.full(volume.shape, -np.inf, dtype=np.float32)

    def work(rows: range) -> None:
        block = out[rows.start:rows.stop]
        for d0, d1, h in runs:
            src = line_max[h][pad0 + d0 + rows.start:pad0 + d0 + rows.stop, pad1 + d1:pad1 + d1 + n1]
            np.maximum(block, src, out=block)

    _run_in_slabs(work, n0, threads)
    return out


def _run_in_slabs(work: Callable[[range], None], length: int, threads: int) -> None:
    """Call ``work`` on ``threads`` contiguous row ranges in parallel (numpy releases the GIL)."""
    threads = max(1, min(threads, length))
    bounds = np.linspace(0, length, threads + 1).astype(int)
    ranges = [range(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    if len(ranges) == 1:
        work(ranges[0])
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        list(pool.map(work, ranges))


def _linear_axis(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    """Periodic linear interpolation of ``a`` along ``axis`` onto ``size`` equally spaced samples."""
    old = a.shape[axis]
    if old == size:
        return a
    position = np.arange(size, dtype=np.float64) * (old / size)
    lower = np.floor(position).astype(np.intp)
    weight = (position - lower).astype(np.float32)
    upper = (lower + 1) % old
    lower %= old
    shape = [1] * a.ndim
    shape[axis] = size
    weight = weight.reshape(shape)
    lo = np.take(a, lower, axis=axis)
    hi = np.take(a, upper, axis=axis)
    hi -= lo
    hi *= weight
    lo += hi
    return lo


def upsample_linear(a: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Periodic trilinear resampling of a coarse grid onto ``shape`` covering the same box.

    Sample 0 of both grids is at the box origin, as after Fourier resampling.  Done one axis at a time,
    smallest result first, so only the last pass touches a full-size array.
    """
    out = np.asarray(a, dtype=np.float32)
    for axis in (2, 1, 0):
        out = _linear_axis(out, axis, int(shape[axis]))
    return np.ascontiguousarray(out, dtype=np.float32)

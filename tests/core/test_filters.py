import numpy as np
import pytest
from scipy import ndimage

from occupy_relion.core import filters


def _fft_reference(volume: np.ndarray, shape) -> np.ndarray:
    """Resampling by a full 3D FFT, from the definition: keep the frequencies k (cycles per box) that both
    grids hold unambiguously, |k| < min(n_old, n_new) / 2 (every k when the size stays)."""
    spectrum = np.fft.fftn(volume)
    out = np.zeros(shape, complex)
    old_index, new_index = [], []
    for old, new in zip(volume.shape, shape):
        k = np.round(np.fft.fftfreq(old) * old).astype(int)
        kept = k if old == new else k[np.abs(k) < min(old, new) / 2]
        old_index.append(kept % old)
        new_index.append(kept % new)
    out[np.ix_(*new_index)] = spectrum[np.ix_(*old_index)]
    return np.fft.ifftn(out).real * np.prod(shape) / volume.size


@pytest.mark.parametrize("shape", [(20, 24, 22), (21, 25, 23), (50, 60, 54), (33, 41, 36)])
def test_resample_matches_a_full_fft(shape):
    volume = np.random.default_rng(0).standard_normal((33, 40, 36)).astype(np.float32)
    out = filters.resample_lowpass(volume, 1.0, shape, None, threads=2)
    assert out.dtype == np.float32 and out.shape == shape
    np.testing.assert_allclose(out, _fft_reference(volume, shape), atol=2e-5)


def test_resample_to_the_same_grid_is_the_identity():
    volume = np.random.default_rng(1).standard_normal((33, 40, 36)).astype(np.float32)
    np.testing.assert_allclose(filters.resample_lowpass(volume, 1.0, volume.shape, None), volume, atol=1e-5)


def test_lowpass_keeps_a_constant_and_removes_high_frequencies():
    z = np.arange(64, dtype=np.float32)
    slow = np.cos(2 * np.pi * z / 32)  # 32 Å period at 1 Å/px: passes an 8 Å low-pass
    fast = np.cos(2 * np.pi * z / 4)  # 4 Å period: removed
    volume = np.broadcast_to((3 + slow + fast)[:, None, None], (64, 16, 16)).astype(np.float32)
    out = filters.resample_lowpass(volume, 1.0, (32, 8, 8), 8.0)
    expected = (3 + slow)[::2]
    np.testing.assert_allclose(out[:, 3, 5], expected, atol=1e-4)


def test_lowpass_transfer_is_half_at_the_cutoff_and_zero_beyond_the_edge():
    f = np.array([0.0, 0.1, 0.125, 0.2], np.float32)
    t = filters.lowpass_transfer(f, 8.0)
    assert t[0] == 1 and t[1] == 1 and abs(t[2] - 0.5) < 1e-6 and t[3] == 0


def test_ball_maximum_equals_a_footprint_maximum_filter():
    volume = np.random.default_rng(2).standard_normal((20, 23, 21)).astype(np.float32)
    spacing = (1.0, 1.2, 0.9)
    radius = 2.5
    runs = filters.ball_offsets(radius, spacing)
    r0 = max(abs(a) for a, _, _ in runs)
    r1 = max(abs(b) for _, b, _ in runs)
    r2 = max(h for _, _, h in runs)
    grid = np.indices((2 * r0 + 1, 2 * r1 + 1, 2 * r2 + 1)).astype(float)
    distance2 = sum(((grid[k] - r) * spacing[k]) ** 2 for k, r in enumerate((r0, r1, r2)))
    footprint = distance2 <= (radius * filters.BALL_TOLERANCE) ** 2
    expected = ndimage.maximum_filter(volume, footprint=footprint, mode="wrap")
    np.testing.assert_array_equal(filters.ball_maximum(volume, radius, spacing, threads=2), expected)
    assert filters.ball_voxel_count(radius, spacing) == footprint.sum()


def test_upsample_matches_trilinear_interpolation():
    coarse = np.random.default_rng(3).random((10, 12, 11), dtype=np.float32)
    shape = (25, 24, 30)
    out = filters.upsample_linear(coarse, shape, threads=2)
    coords = np.indices(shape).astype(float)
    coords = [c * n / m for c, n, m in zip(coords, coarse.shape, shape)]
    expected = ndimage.map_coordinates(np.pad(coarse, ((0, 1),) * 3, mode="wrap"), coords, order=1)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_array_equal(filters.RowInterpolator(coarse, shape).rows(5, 9), out[5:9])


def test_lookup_uniform_matches_interp():
    values = np.random.default_rng(4).uniform(-3, 14, (7, 9, 11)).astype(np.float32)
    table = np.sin(np.arange(12, dtype=np.float32))
    out = filters.lookup_uniform(values, 0.0, 1.0, table, threads=2)
    np.testing.assert_allclose(out, np.interp(values, np.arange(12), table), atol=1e-6)


def test_ball_neighbours_give_the_ball_maximum_bit_for_bit():
    """The calibration reads trial maps' local maxima at a few voxels only, from their balls' points."""
    rng = np.random.default_rng(7)
    volume = rng.standard_normal((20, 22, 24)).astype(np.float32)
    spacing = (1.0, 1.1, 0.9)
    full = filters.ball_maximum(volume, 2.3, spacing)
    points = tuple(rng.integers(0, n, 300) for n in volume.shape)  # box faces included (periodic)
    points = (np.concatenate([points[0], [0, 19]]), np.concatenate([points[1], [0, 21]]),
              np.concatenate([points[2], [0, 23]]))
    neighbours = filters.ball_neighbours(points, volume.shape, 2.3, spacing)
    assert neighbours.shape[0] == filters.ball_voxel_count(2.3, spacing)
    assert np.array_equal(volume.ravel()[neighbours].max(axis=0), full[points])


@pytest.mark.parametrize("threads", [1, 3])
def test_separable_filter_is_scipys_filter_bit_for_bit(threads):
    rng = np.random.default_rng(8)
    volume = rng.standard_normal((17, 19, 21)).astype(np.float32)
    box = filters.separable_filter(ndimage.uniform_filter1d, volume, (5, 5, 5), threads)
    assert np.array_equal(box, ndimage.uniform_filter(volume, 5, mode="wrap", output=np.float32))
    in_place = volume.copy()
    filters.separable_filter(ndimage.uniform_filter1d, in_place, (5, 5, 5), threads, output=in_place)
    assert np.array_equal(in_place, box)
    windows = (3, 7, 5)
    expected = volume
    for axis, size in enumerate(windows):
        expected = ndimage.maximum_filter1d(expected, size, axis=axis, mode="wrap")
    assert np.array_equal(filters.separable_filter(ndimage.maximum_filter1d, volume, windows, threads), expected)

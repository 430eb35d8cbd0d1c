"""A map and its noise from two half maps: known signal and noise in, both recovered."""

from __future__ import annotations

import numpy as np
import pytest

from occupy_relion.core import half_map_mean, half_map_noise


@pytest.fixture
def halves():
    """Signal plus independent noise of sd 2 in each half."""
    rng = np.random.default_rng(7)
    signal = rng.standard_normal((24, 24, 24)).astype(np.float32)
    noise1, noise2 = (2 * rng.standard_normal((24, 24, 24))).astype(np.float32), (2 * rng.standard_normal(
        (24, 24, 24))).astype(np.float32)
    return signal, signal + noise1, signal + noise2


def test_mean_keeps_the_signal_and_halves_the_noise_power(halves):
    signal, half1, half2 = halves
    mean = half_map_mean(half1, half2)
    assert mean.dtype == np.float32
    assert np.std(mean - signal) == pytest.approx(2 / np.sqrt(2), rel=0.05)


def test_noise_has_no_signal_and_the_noise_of_the_mean(halves):
    signal, half1, half2 = halves
    noise = half_map_noise(half1, half2)
    assert noise is not None and noise.dtype == np.float32
    assert abs(np.corrcoef(noise.ravel(), signal.ravel())[0, 1]) < 0.05
    assert np.std(noise) == pytest.approx(np.std(half_map_mean(half1, half2) - signal), rel=0.05)


def test_identical_halves_carry_no_noise(halves):
    _, half1, _ = halves
    assert half_map_noise(half1, half1.copy()) is None


def test_mean_in_place_spares_a_copy(halves):
    _, half1, half2 = halves
    expected = half_map_mean(half1, half2)
    result = half_map_mean(half1, half2, out=half1)
    assert result is half1
    np.testing.assert_array_equal(result, expected)

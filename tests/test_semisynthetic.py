"""Semi-synthetic cases from a map: the slab holds exactly its factor, the noise stays stationary."""

from __future__ import annotations

import numpy as np
import pytest

from occupy_relion import semisynthetic as ss
from occupy_relion import synthetic


@pytest.fixture(scope="module")
def clean_and_noise():
    """A synthetic particle and separately its noise (so the truth of each part is known)."""
    particle = synthetic.make_particle((1.0, 1.0, 1.0), seed=2)
    clean = synthetic.render(particle, (64, 64, 64), 1.5)
    noise = synthetic.correlated_noise((64, 64, 64), 1.5, 0.3 * float(clean.std()), seed=5)
    return clean, noise


def test_slab_weight_is_one_inside_zero_outside_with_a_soft_edge():
    slab = ss.Slab(axis=0, start=30.0, stop=60.0, edge=6.0)
    weight = slab.weight(60, 1.5)  # voxel centres at 0.75, 2.25, ... Å
    x = (np.arange(60) + 0.5) * 1.5
    assert np.all(weight[(x >= 36) & (x <= 54)] == 1) and np.all(weight[(x <= 30) | (x >= 60)] == 0)
    edge = weight[(x > 30) & (x < 36)]
    assert np.all((edge > 0) & (edge < 1)) and np.all(np.diff(edge) > 0)
    with pytest.raises(ValueError):
        ss.Slab(axis=3, start=0, stop=10, edge=1)
    with pytest.raises(ValueError):
        ss.Slab(axis=0, start=0, stop=10, edge=6)


def test_signal_in_the_slab_is_scaled_by_its_factor(clean_and_noise):
    clean, noise = clean_and_noise
    solvent = (np.abs(clean) < 0.01 * clean.max()).astype(np.float32)  # where the map is only noise
    slab = ss.Slab(axis=0, start=30.0, stop=66.0, edge=6.0)
    case = ss.make_case(clean + noise, 1.5, solvent, slab, 0.5, seed=1, solvent_mean=0.0)
    assert case.solvent_sd == pytest.approx(np.std(noise), rel=0.1)
    # the case minus the map, where the map's own noise is known: (t − 1)·(clean + noise) + refill
    x = (np.arange(64) + 0.5) * 1.5
    core = (x >= 36) & (x <= 60)
    outside = (x <= 30) | (x >= 66)
    np.testing.assert_array_equal(case.volume[outside], (clean + noise)[outside])
    refill = case.volume[core] - 0.5 * (clean + noise)[core]
    c = clean[core].ravel()
    leak = float(np.dot(refill.ravel(), c) / np.dot(c, c))  # a signal left unscaled would leak 0.5
    assert abs(leak) < 0.1
    # lost noise power refilled: the noise sd in the core equals the original's
    assert np.std(0.5 * noise[core] + refill) == pytest.approx(np.std(noise), rel=0.1)


def test_extra_noise_adds_that_many_solvent_sds(clean_and_noise):
    clean, noise = clean_and_noise
    solvent = np.ones(clean.shape, np.float32)
    slab = ss.Slab(axis=1, start=20.0, stop=60.0, edge=5.0)
    plain = ss.make_case(noise, 1.5, solvent, slab, 1.0, seed=1)
    extra = ss.make_case(noise, 1.5, solvent, slab, 1.0, extra_noise=1.0, seed=1)
    assert np.std(extra.volume - plain.volume) == pytest.approx(plain.solvent_sd, rel=0.05)
    assert np.std(extra.volume) == pytest.approx(np.sqrt(2) * np.std(noise), rel=0.05)


def test_reproducible_and_inputs_untouched(clean_and_noise):
    clean, noise = clean_and_noise
    volume = clean + noise
    before = volume.copy()
    solvent = np.ones(volume.shape, np.float32)
    slab = ss.Slab(axis=2, start=20.0, stop=60.0, edge=5.0)
    a = ss.make_case(volume, 1.5, solvent, slab, 0.25, 1.0, seed=3)
    b = ss.make_case(volume, 1.5, solvent, slab, 0.25, 1.0, seed=3)
    np.testing.assert_array_equal(a.volume, b.volume)
    np.testing.assert_array_equal(volume, before)
    assert a.volume.dtype == np.float32


def test_relative_occupancy_reads_a_known_ratio(clean_and_noise):
    clean, _ = clean_and_noise
    slab = ss.Slab(axis=0, start=30.0, stop=66.0, edge=6.0)
    case = ss.make_case(clean, 1.5, np.ones(clean.shape, np.float32), slab, 0.5, seed=0, solvent_mean=0.0)
    core, outside = ss.regions(case, clean, 0.1, margin=3.0)
    original = np.abs(clean) + 1
    scale = original.copy()
    scale[core] *= 0.4  # an estimate that reads 0.4 inside
    scale[outside] *= 1.2  # and whose reference moved (the control divides it out)
    assert ss.relative_occupancy(scale, original, core, outside) == pytest.approx(0.4 / 1.2, rel=1e-5)


# --- cases with the real noise of two half maps --------------------------------------------------------


@pytest.fixture(scope="module")
def signal_and_halves():
    """A synthetic particle and two half maps of it with independent noise (sd 0.3 × the signal's)."""
    particle = synthetic.make_particle((1.0, 1.0, 1.0), seed=2)
    signal = synthetic.render(particle, (48, 48, 48), 1.5)
    sd = 0.3 * float(signal.std())
    halves = [signal + synthetic.correlated_noise(signal.shape, 1.5, sd, seed=s) for s in (11, 12)]
    return signal, halves[0], halves[1]


def test_half_map_case_scales_the_signal_in_the_slab_and_keeps_the_mean_outside(signal_and_halves):
    signal, half1, half2 = signal_and_halves
    slab = ss.Slab(axis=1, start=24.0, stop=54.0, edge=6.0)
    case, difference = ss.make_half_map_case(signal, signal.copy(), 1.5, slab, 0.25, solvent_mean=0.0)
    np.testing.assert_array_equal(difference, 0)
    line = slab.weight(48, 1.5)
    np.testing.assert_allclose(case.volume, signal * (1 - 0.75 * line)[None, :, None], atol=1e-6)
    case, difference = ss.make_half_map_case(half1, half2, 1.5, slab, 0.25, solvent_mean=0.0)
    outside = line == 0
    np.testing.assert_allclose(case.volume[:, outside], ((half1 + half2) / 2)[:, outside], atol=1e-6)
    np.testing.assert_allclose(difference, (half1 - half2) / 2, atol=1e-6)
    assert (case.factor, case.solvent_mean) == (0.25, 0.0)


def test_half_map_case_keeps_the_noise_power_in_the_slab(signal_and_halves):
    """Pure-noise halves: the slab's core holds as much noise as the mean of the halves, for either sign."""
    signal, half1, half2 = signal_and_halves
    noise1, noise2 = half1 - signal, half2 - signal
    slab = ss.Slab(axis=0, start=15.0, stop=60.0, edge=3.0)
    core = slab.weight(48, 1.5) == 1
    mean_sd = float(((noise1 + noise2) / 2)[core].std())
    for sign in (1, -1):
        case, _ = ss.make_half_map_case(noise1, noise2, 1.5, slab, 0.5, solvent_mean=0.0, sign=sign)
        assert float(case.volume[core].std()) == pytest.approx(mean_sd, rel=0.05)


def test_half_map_case_leaves_its_inputs_and_refuses_bad_arguments(signal_and_halves):
    _, half1, half2 = signal_and_halves
    before = half1.copy(), half2.copy()
    slab = ss.Slab(axis=2, start=15.0, stop=60.0, edge=3.0)
    ss.make_half_map_case(half1, half2, 1.5, slab, 0.5, solvent_mean=0.1)
    np.testing.assert_array_equal(half1, before[0])
    np.testing.assert_array_equal(half2, before[1])
    for factor, sign in ((0.0, 1), (1.5, 1), (0.5, 0)):
        with pytest.raises(ValueError):
            ss.make_half_map_case(half1, half2, 1.5, slab, factor, solvent_mean=0.0, sign=sign)
    with pytest.raises(ValueError, match="shape"):
        ss.make_half_map_case(half1, half2[:-1], 1.5, slab, 0.5, solvent_mean=0.0)

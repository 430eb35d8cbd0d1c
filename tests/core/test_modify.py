import math

import numpy as np
import pytest

from occupy_relion import synthetic
from occupy_relion.core import (
    DEFAULT_MAX_GAIN,
    ModifyParameters,
    ParameterError,
    amplify,
    attenuate,
    estimate_scale,
    filters,
    modify_map,
    sigmoid,
)
from occupy_relion.core.modify import amplify_factor, sigmoid_factor


@pytest.fixture(scope="module")
def case(request):
    volume, particle = synthetic.noisy_map((96, 96, 96), 1.0, 0.25, (1.0, 0.5, 0.25), seed=2)
    est = estimate_scale(volume, 1.0, threads=2)
    labels = synthetic.domain_masks(particle, volume.shape, 1.0)
    full = synthetic.render(particle, volume.shape, 1.0, occupancy=False)
    return volume, est, labels, full


def _domain_level(volume, mu, labels, full, k):
    """Density above the solvent in the strong part of domain k, relative to its full-occupancy truth."""
    strong = (labels == k) & (full > np.percentile(full[labels > 0], 70))
    return np.median(volume[strong] - mu) / np.median(full[strong])


def test_gamma_one_returns_the_input_exactly(case):
    volume, est, _, _ = case
    mu = est.solvent.mean
    np.testing.assert_array_equal(amplify(volume, est.scale_grid, est.confidence_grid, mu, 1.0), volume)
    np.testing.assert_array_equal(attenuate(volume, est.scale_grid, est.confidence_grid, mu, 1.0), volume)
    noise = np.ones_like(volume)
    np.testing.assert_array_equal(attenuate(volume, est.scale, est.confidence, mu, 1.0, noise), volume)


def test_equalising_brings_partial_domains_to_full(case):
    volume, est, labels, full = case
    mu = est.solvent.mean
    out = modify_map(volume, est, 1.0, ModifyParameters(), threads=2)["equalised"]
    before = [_domain_level(volume, mu, labels, full, k) for k in (1, 2, 3)]
    after = [_domain_level(out, mu, labels, full, k) for k in (1, 2, 3)]
    assert before[2] / before[0] < 0.35  # the 0.25 domain is weak in the input
    assert after[1] / after[0] == pytest.approx(1.0, abs=0.15)
    # the 0.25 domain rises from < 0.35 to > 0.7 of the full one; not to 1, because the scale of the full
    # domain's strongest density is clipped at 1 while the weak domain's is not, and its confidence is < 1
    assert after[2] / after[0] > 0.7


def test_a_fully_occupied_map_is_left_nearly_as_it_is():
    volume, particle = synthetic.noisy_map((96, 96, 96), 1.0, 0.25, (1.0, 1.0, 1.0), seed=3)
    est = estimate_scale(volume, 1.0)
    out = modify_map(volume, est, 1.0)["equalised"]
    clean = synthetic.render(particle, volume.shape, 1.0)
    strong = clean > np.percentile(clean[clean > 0.05 * clean.max()], 75)
    mu = est.solvent.mean
    change = np.median((out[strong] - mu) / (volume[strong] - mu))
    assert change == pytest.approx(1.0, abs=0.05)


def test_coarse_and_full_size_inputs_agree(case):
    volume, est, _, _ = case
    mu = est.solvent.mean
    coarse = amplify(volume, est.scale_grid, est.confidence_grid, mu, 4.0)
    full = amplify(volume, est.scale, est.confidence, mu, 4.0)
    assert np.abs(coarse - full).max() <= 0.05 * np.abs(volume).max()


def test_outputs_follow_the_intensity_of_the_input(case):
    volume, est, _, _ = case
    params = ModifyParameters(amplify=3.0, attenuate=2.0, sigmoid=3.0, pivot=0.4)
    base = modify_map(volume, est, 1.0, params)
    for factor in (1000.0, 0.001):
        scaled = volume * np.float32(factor)
        other = modify_map(scaled, estimate_scale(scaled, 1.0), 1.0, params)
        for name in ("equalised", "attenuated", "sigmoid"):
            error = np.abs(other[name] / factor - base[name]).max() / np.abs(base[name]).max()
            assert error < 1e-3, (name, factor, error)


@pytest.mark.parametrize("exclude", [False, True])
def test_no_nan_or_inf_anywhere(case, exclude):
    volume, est, _, _ = case
    params = ModifyParameters(amplify=math.inf, attenuate=6.0, sigmoid=8.0, pivot=0.3, exclude_solvent=exclude)
    maps = modify_map(volume, est, 1.0, params)
    assert set(maps) == {"equalised", "attenuated", "sigmoid"}
    for name, array in maps.items():
        assert np.isfinite(array).all(), name
        assert array.dtype == np.float32 and array.shape == volume.shape
    # a scale of exactly zero is limited, not divided by
    zero = np.zeros((8, 8, 8), np.float32)
    assert np.isfinite(amplify_factor(zero, math.inf)).all() and np.isfinite(sigmoid_factor(zero, 4.0, 0.5)).all()


def test_flattened_solvent_is_the_solvent_mean(case):
    volume, est, _, _ = case
    out = modify_map(volume, est, 1.0, ModifyParameters(exclude_solvent=True))["equalised"]
    solvent = est.confidence == 0
    assert solvent.sum() > 1000
    np.testing.assert_allclose(out[solvent], est.solvent.mean, atol=1e-6 * np.abs(volume).max())


def test_attenuation_fills_with_reproducible_solvent_like_noise(case):
    volume, est, labels, full = case
    params = ModifyParameters(attenuate=4.0, seed=3)
    first = modify_map(volume, est, 1.0, params)["attenuated"]
    again = modify_map(volume, est, 1.0, params)["attenuated"]
    other = modify_map(volume, est, 1.0, ModifyParameters(attenuate=4.0, seed=4))["attenuated"]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    mu = est.solvent.mean
    # the 0.25 domain is mostly removed (as far as the confidence allows), the full one is kept
    assert _domain_level(first, mu, labels, full, 3) < 0.4 * _domain_level(volume, mu, labels, full, 3)
    assert _domain_level(first, mu, labels, full, 1) > 0.6 * _domain_level(volume, mu, labels, full, 1)
    # and what was removed looks like solvent: the same spread as the solvent, not a hole
    weak = labels == 3
    solvent_sd = np.std(volume[labels == 0])
    assert np.std(first[weak]) == pytest.approx(solvent_sd, rel=0.5)


def test_sigmoid_separates_around_the_pivot():
    s = np.array([0.1, 0.3, 0.5, 0.7, 0.9], np.float32)
    target = sigmoid_factor(s, 3.0, 0.5) * s
    assert target[2] == pytest.approx(0.5)
    assert target[0] < 0.1 and target[1] < 0.3 and target[3] > 0.7 and target[4] > 0.9


@pytest.mark.parametrize("kwargs", [dict(amplify=0.5), dict(attenuate=0.9), dict(sigmoid=2.0, pivot=1.5),
                                    dict(scale_limit=0.0), dict(scale_limit=1.0)])
def test_bad_parameters_are_rejected(case, kwargs):
    volume, est, _, _ = case
    with pytest.raises(ValueError):
        modify_map(volume, est, 1.0, ModifyParameters(**kwargs))


@pytest.fixture(scope="module")
def belt():
    """A particle of full domains in a smooth detergent-belt-like disc at 0.21 × the protein's low-passed
    density (no atoms in it, so it is smooth low density), moderate noise."""
    shape = (112, 112, 112)
    particle = synthetic.make_particle((1.0, 1.0, 1.0), seed=2)
    clean = synthetic.render(particle, shape, 1.0)
    labels = synthetic.domain_masks(particle, shape, 1.0)
    lowpassed = filters.resample_lowpass(clean, 1.0, shape, 8.0)
    z, y, x = np.indices(shape, dtype=np.float32) - 56
    radius = np.sqrt(x ** 2 + y ** 2)
    disc = filters.resample_lowpass(((np.abs(z) < 10) & (radius > 30) & (radius < 50)).astype(np.float32),
                                    1.0, shape, 6.0)
    volume = clean + disc * np.float32(0.21 * np.median(lowpassed[labels > 0]))
    volume += synthetic.correlated_noise(shape, 1.0, 0.25 * float(clean[labels > 0].std()), seed=7)
    est = estimate_scale(volume, 1.0, threads=2)
    return volume, est, labels, disc > 0.9


def _lowpassed_level(volume, mu, where):
    return float(np.median(filters.resample_lowpass(volume, 1.0, volume.shape, 8.0)[where] - mu))


def test_the_scale_reads_the_belt_at_its_density(belt):
    _, est, labels, disc = belt
    relative = np.median(est.scale[disc]) / np.median(est.scale[labels > 0])
    assert abs(relative - 0.21) <= 0.05  # linear: not 0.11 as a saturating scale read it


def test_a_belt_is_not_lifted_above_the_protein(belt):
    volume, est, labels, disc = belt
    mu = est.solvent.mean
    bounded = modify_map(volume, est, 1.0, ModifyParameters(), threads=2)["equalised"]
    unbounded = modify_map(volume, est, 1.0, ModifyParameters(max_gain=math.inf), threads=2)["equalised"]
    before = _lowpassed_level(volume, mu, disc)
    after = _lowpassed_level(bounded, mu, disc)
    assert after <= DEFAULT_MAX_GAIN * before * 1.01  # lifted at most max_gain times
    assert after < _lowpassed_level(bounded, mu, labels > 0)  # and stays below the protein
    assert _lowpassed_level(unbounded, mu, disc) > 1.1 * after  # the bound is what holds it


def test_no_voxel_gets_more_than_the_maximum_gain(case):
    volume, est, _, _ = case
    mu = est.solvent.mean
    out = modify_map(volume, est, 1.0, ModifyParameters(max_gain=2.0), threads=2)["equalised"]
    gain = (out - mu)[np.abs(volume - mu) > 1e-6] / (volume - mu)[np.abs(volume - mu) > 1e-6]
    assert gain.max() <= 2.0 + 1e-4 and gain.min() >= 1 - 1e-4
    assert ModifyParameters(max_gain=2.0).gain_floor == 0.5
    assert ModifyParameters(max_gain=math.inf).gain_floor == ModifyParameters().scale_limit


@pytest.mark.parametrize("value", [1.0, 0.5, float("nan")])
def test_a_maximum_gain_of_at_most_one_is_refused(value):
    with pytest.raises(ParameterError, match="must be above 1") as error:
        ModifyParameters(max_gain=value)
    assert error.value.name == "max_gain"


def test_scales_above_one_are_not_attenuated_by_equalising():
    scale = np.array([0.5, 1.0, 1.3], np.float32)
    np.testing.assert_allclose(amplify_factor(scale, math.inf), [2.0, 1.0, 1.0])

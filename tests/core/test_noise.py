"""The noise model: local level, noise filtered like the map, the bias removed, the decay fitted."""

from __future__ import annotations

import numpy as np
import pytest

from occupy_relion import synthetic
from occupy_relion.core import NoiseFloorSource, filters, measure, noise, normalise

from .conftest import MODERATE_NOISE, domain_medians


def test_local_level_follows_noise_that_is_stronger_in_half_the_box():
    rng = np.random.default_rng(3)
    shape = (32, 32, 128)
    field = filters.resample_lowpass(rng.standard_normal(shape, dtype=np.float32), 2.0, shape, 8.0)
    field /= field.std()
    truth = np.ones(field.shape, np.float32)
    truth[:, :, 64:] = 2.0
    level = noise.local_level(field * truth, np.ones(field.shape, bool), 8.0, (2.0, 2.0, 2.0))
    # well inside each half (the window's sd is 16 Å, each half 128 Å)
    assert np.median(level[:, :, 24:40]) == pytest.approx(1.0, rel=0.1)
    assert np.median(level[:, :, 88:104]) == pytest.approx(2.0, rel=0.1)


def test_local_level_fills_a_hole_from_the_noise_around_it():
    rng = np.random.default_rng(4)
    field = rng.standard_normal((48, 48, 48)).astype(np.float32) * 3
    valid = np.ones(field.shape, bool)
    valid[14:34, 14:34, 14:34] = False  # a "molecule" 40 Å across with no noise sample in it
    field[~valid] = 1000.0  # what is there must not count
    level = noise.local_level(field, valid, 8.0, (2.0, 2.0, 2.0))
    assert level[24, 24, 24] == pytest.approx(3.0, rel=0.1)


def test_half_map_noise_is_filtered_like_the_map():
    """A map low-passed to 12 Å (as RELION weights a map by its FSC) and white half-map noise: the noise
    is given the map's spectrum, so its local maximum is the one the map's own solvent has."""
    rng = np.random.default_rng(5)
    shape = (48, 48, 48)
    solvent = filters.resample_lowpass(rng.standard_normal(shape, dtype=np.float32), 2.0, shape, 12.0)
    white = rng.standard_normal(shape, dtype=np.float32)
    matched, transfer = noise.match_filter(white, solvent, np.ones(shape, np.float32))
    assert 0 < transfer < 1
    assert matched.std() == pytest.approx(solvent.std(), rel=0.1)
    own = np.median(filters.ball_maximum(solvent, 4.0, (2.0,) * 3))
    assert np.median(filters.ball_maximum(matched, 4.0, (2.0,) * 3)) == pytest.approx(own, rel=0.1)


def test_remove_bias_zeroes_pure_noise_and_keeps_strong_density():
    statistic = np.array([0.0, 0.5, 1.0, 30.0, 80.0], np.float32)
    corrected = noise.remove_bias(statistic, np.float32(1.0), 0.3)
    assert corrected[0] == corrected[1] == corrected[2] == 0  # at or below the floor: no signal
    assert corrected[3] == pytest.approx(30.0, abs=1e-3) and corrected[4] == 80.0
    assert np.array_equal(noise.remove_bias(statistic, np.float32(0.0), 0.3), statistic)  # no floor: as is


def test_fit_keeps_the_default_without_enough_molecule():
    m = np.ones((10, 10, 10), np.float32)
    few = np.zeros(m.shape, bool)
    few[0, 0, :5] = True
    model = noise.fit_bias(m, m, few, [(0.5, m)], default=0.27)
    assert model.decay == 0.27 and not model.fitted


def test_half_map_noise_stronger_on_one_side_gives_a_higher_floor_there():
    """Noise twice as strong in half the box (as RELION's is inside a molecule), with a noise map of the
    same kind (half the half-map difference): the floor follows it and the domains read their occupancy.
    (The map's own solvent cannot show this: one solvent Gaussian calls the noisier solvent molecule.)"""
    volume, particle = synthetic.noisy_map((128, 128, 128), 1.0, 0.0, (1.0, 0.5, 0.25), seed=1)
    labels = synthetic.domain_masks(particle, volume.shape, 1.0)
    sd = 0.25 * float(synthetic.render(particle, volume.shape, 1.0, occupancy=False)[labels > 0].std())
    stronger = np.ones(volume.shape[2], np.float32)
    stronger[:64] = 2.0
    in_map = synthetic.correlated_noise(volume.shape, 1.0, sd, seed=9) * stronger
    noise_map = synthetic.correlated_noise(volume.shape, 1.0, sd, seed=10) * stronger
    est = normalise(measure(volume + in_map, 1.0, noise=noise_map, threads=2))
    s = est.settings
    assert s.noise_floor_source is NoiseFloorSource.NOISE_MAP and "filtered like the map" in s.noise_floor_reason
    low, high = s.noise_floor_spread
    assert high / low > 1.6
    medians = domain_medians(est.scale, labels)
    assert abs(medians[1] / medians[0] - 0.5) <= 0.05 and abs(medians[2] / medians[0] - 0.25) <= 0.05


def test_too_little_solvent_says_so_and_still_estimates():
    volume, particle = synthetic.noisy_map((128, 128, 128), 1.0, MODERATE_NOISE, (1.0, 1.0, 1.0), seed=0)
    tight = volume[36:92, 36:92, 44:84].copy()  # a box barely larger than the molecule
    m = measure(tight, 1.0, threads=2)
    assert m.settings.noise_floor_source is NoiseFloorSource.SIMULATED
    assert "solvent voxels far from the molecule" in m.settings.noise_floor_reason
    assert m.settings.noise_floor > 0 and np.isfinite(m.statistic).all()


def test_fit_reads_density_far_above_the_floor_as_it_is():
    """Density hundreds of floors strong (a map with almost no noise) scaled by α reads α exactly."""
    rng = np.random.default_rng(6)
    observed = (200 + 100 * rng.random((20, 20, 20))).astype(np.float32)
    floor = np.ones(observed.shape, np.float32)
    voxels = np.ones(observed.shape, bool)
    model = noise.fit_bias(observed, floor, voxels, [(0.5, observed * 0.5), (0.25, observed * 0.25)], 0.27)
    assert model.fitted and model.residual < 1e-6 and model.decay == 0.27

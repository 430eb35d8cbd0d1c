"""No-data voxels (core/nodata.py) and what the estimate does with them, on real maps with known masks."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy import ndimage
from scipy.ndimage import gaussian_filter

from occupy_relion import synthetic
from occupy_relion.core import (
    ModifyParameters,
    ScaleParameters,
    estimate_scale,
    measure,
    modify_map,
    normalise,
    solvent_like_noise,
)
from occupy_relion.core.nodata import NO_DATA_SPREAD, find_no_data, flat_value, local_spread, typical_spread

from .conftest import MODERATE_NOISE, _make, domain_medians, soft_edge

#: issue 9's targets in a masked or flattened region
CONFIDENCE_P99 = 0.05
SD_RATIO = 1.5


def _estimate(volume, pixel, **modify):
    estimate = estimate_scale(volume, pixel)
    equalised = modify_map(volume, estimate, pixel, ModifyParameters(**modify))["equalised"]
    return estimate, equalised


# --- the pure parts -------------------------------------------------------------------------------------

def test_flat_value_needs_a_sizeable_share_of_one_exact_value():
    volume = np.random.default_rng(0).normal(size=(40, 40, 40)).astype(np.float32)
    assert flat_value(volume) is None
    volume[:, :, :2] = 0.25  # 5 % of the box
    assert flat_value(volume) == 0.25


def test_the_commonest_level_of_a_quantised_map_is_not_flattened_solvent(relion_class):
    """8-bit-like data: every value is shared by many scattered voxels; only a connected block counts."""
    _, volume, pixel = relion_class
    data = volume != 0
    sd = float(volume[data].std())
    quantised = np.round(np.random.default_rng(4).normal(0, sd, volume.shape) / (0.2 * sd)).astype(np.float32)
    assert flat_value(quantised) is None
    found = find_no_data(quantised, pixel, (85, 85, 85), 10.5)
    assert found.constant is None and not found.any
    masked = np.where(data, quantised, np.float32(0))  # the same with RELION's flattened corners
    assert flat_value(masked) == 0


def test_local_spread_is_the_noise_sd_and_zero_where_constant():
    rng = np.random.default_rng(1)
    volume = rng.normal(0, 2.0, (40, 40, 40)).astype(np.float32)
    volume[:, :, :15] = 3.0
    spread = local_spread(volume, 5)
    assert np.median(spread[:, :, 20:]) == pytest.approx(2.0 * np.sqrt(24 / 25), rel=0.05)
    assert np.all(spread[:, :, 3:12] < 1e-3)  # the cube wraps at the box faces
    assert typical_spread(spread) == pytest.approx(2.0, rel=0.1)


def test_unmasked_noise_and_molecule_have_no_no_data_voxels():
    volume, _, _ = _make(MODERATE_NOISE, 0, shape=(96, 96, 96))
    found = find_no_data(volume, 1.0, volume.shape, 8.0)
    assert found.constant is None and not found.any


@pytest.mark.parametrize("factor, offset", [(1000.0, 0.0), (1e-3, 0.0), (1.0, 5.0)])
def test_no_data_does_not_depend_on_intensity_or_offset(relion_class, factor, offset):
    _, volume, pixel = relion_class
    shape = (85, 85, 85)
    base = find_no_data(volume, pixel, shape, 10.5)
    sd = float(volume.std())  # an offset of 5 map sd (float32 keeps the noise)
    moved = find_no_data(volume * np.float32(factor) + np.float32(offset * sd), pixel, shape, 10.5)
    assert np.mean(base.grid != moved.grid) < 1e-3


# --- RELION's flattened Class3D maps ---------------------------------------------------------------------

def test_relion_flattened_solvent_has_no_confidence_and_keeps_its_value(relion_class):
    name, volume, pixel = relion_class
    flat = volume == 0
    assert flat.mean() > 0.4, name  # RELION zeroed everything outside its soft sphere
    estimate, equalised = _estimate(volume, pixel)
    assert estimate.no_data is not None and estimate.no_data.constant == 0
    assert np.percentile(estimate.confidence[flat], 99) <= CONFIDENCE_P99, name
    np.testing.assert_array_equal(equalised[flat], volume[flat])  # the input, exactly
    # the outer fall-off of RELION's soft edge (radius 25.7 + 5 voxels; beyond 29 the mask is below 1/4):
    # no noise amplified there
    r = np.sqrt(((np.indices(volume.shape) - 32) ** 2).sum(axis=0))
    edge = (r > 29) & ~flat
    assert equalised[edge].std() <= SD_RATIO * volume[edge].std(), name
    # and the molecule is still there
    assert np.mean(estimate.confidence >= 0.5) > 0.03, name


@pytest.mark.parametrize("sign", [-1, 1])
def test_flattened_confidence_does_not_depend_on_the_side_of_the_solvent_mean(relion_class, sign):
    """RELION 3.1 classes sat 0.12 sd above their zeros (confidence 0), 5.0 ones below (0.34, 0.64)."""
    name, volume, pixel = relion_class
    flat = volume == 0
    moved = volume.copy()
    sd = float(volume[~flat].std())
    moved[flat] = np.float32(sign * 0.5 * sd)  # the flattened value on either side of the solvent
    deep = np.sqrt(((np.indices(volume.shape) - 32) ** 2).sum(axis=0)) > 34  # well away from the data
    for mode in ("occupancy", "resolution"):
        estimate = estimate_scale(moved, pixel, ScaleParameters(mode=mode))
        assert np.percentile(estimate.confidence[flat], 99) <= CONFIDENCE_P99, (name, sign, mode)
        assert np.percentile(estimate.scale[deep], 99) < 0.01, (name, sign, mode)  # no data reads no density


def test_empty_space_around_a_class_does_not_change_its_confidence(relion_class):
    name, volume, pixel = relion_class
    padded = np.zeros((96, 96, 96), np.float32)
    padded[16:80, 16:80, 16:80] = volume
    small, big = estimate_scale(volume, pixel), estimate_scale(padded, pixel)
    inner = big.confidence[16:80, 16:80, 16:80]
    molecule = small.confidence >= 0.5
    assert np.mean(inner >= 0.5) == pytest.approx(np.mean(molecule), rel=0.05), name
    assert np.median(np.abs(inner - small.confidence)[molecule]) < 0.02, name
    assert np.percentile(big.confidence[padded == 0], 99) <= CONFIDENCE_P99, name


# --- real maps masked by us ------------------------------------------------------------------------------

def test_masked_real_map_has_no_confidence_and_no_amplified_noise_outside(masked_5168, unmasked_sd):
    name, volume, pixel, masked = masked_5168
    estimate, equalised = _estimate(volume, pixel)
    assert np.percentile(estimate.confidence[masked], 99) <= CONFIDENCE_P99, name
    assert equalised[masked].std() <= SD_RATIO * volume[masked].std() + 1e-30, name
    # the solvent is fitted on the real noise inside the mask, not on the masked-out voxels
    assert estimate.settings.solvent_sd > 0.5 * unmasked_sd, name


def test_masked_solvent_stays_out_of_the_noise_floor(masked_5168, emd5168):
    """Masked voxels would pull the floor (a median local maximum) towards 0 (the issue saw exactly 0);
    the noise that is left is nearer the filament, where EMD-5168's noise is stronger, so the floor may rise."""
    name, volume, pixel, _ = masked_5168
    unmasked = measure(*emd5168)
    floor = measure(volume, pixel).settings.noise_floor
    assert floor >= 0.75 * unmasked.settings.noise_floor, name


@pytest.fixture(scope="module")
def unmasked_sd(emd5168) -> float:
    """The low-passed solvent sd of the unmasked EMD-5168."""
    return measure(*emd5168).settings.solvent_sd


def test_masking_keeps_the_scale_inside_the_mask(emd5168):
    """A soft sphere (radius 36) around the middle of the filament: the scale well inside is unchanged."""
    volume, pixel = emd5168
    r = np.sqrt(((np.indices(volume.shape) - 49.5) ** 2).sum(axis=0))
    mask = soft_edge(r, 36, 8)
    plain = normalise(measure(volume, pixel))
    masked = normalise(measure(volume * mask, pixel))
    inside = (r < 24) & (plain.confidence >= 0.5)
    difference = masked.scale[inside] - plain.scale[inside]
    assert abs(float(np.median(difference))) < 0.05


def test_unmasked_real_maps_have_no_no_data(emd5168, emd1703):
    for volume, pixel in (emd5168, emd1703):
        m = measure(volume, pixel)
        assert m.no_data is not None and m.no_data.fraction < 0.001


def test_the_spread_threshold_is_below_real_noise(emd5168):
    """EMD-5168's own solvent never looks like no data (its 1st percentile is about 0.6 of the mode)."""
    volume, pixel = emd5168
    found = find_no_data(volume, pixel, (87, 87, 87), 8.0)
    assert not found.any
    spread = local_spread(volume, 5)
    assert np.percentile(spread, 1) > 2 * NO_DATA_SPREAD * found.spread


@pytest.mark.parametrize("mode", ["occupancy", "resolution"])
def test_every_modified_map_keeps_flattened_voxels_exactly(relion_class, mode):
    name, volume, pixel = relion_class
    flat = volume == 0
    estimate = estimate_scale(volume, pixel, ScaleParameters(mode=mode))
    assert np.percentile(estimate.confidence[flat], 99) <= CONFIDENCE_P99, name
    modified = modify_map(volume, estimate, pixel, ModifyParameters(attenuate=2.0, sigmoid=3.0, exclude_solvent=True))
    for kind, out in modified.items():
        np.testing.assert_array_equal(out[flat], volume[flat], err_msg=f"{name} {kind}")


def test_solvent_like_noise_has_the_level_of_the_real_noise_not_of_the_mask(masked_5168, emd5168):
    """The attenuated and sigmoid maps fill removed density with noise of the solvent's level: masked
    voxels (a zero-level 'solvent') must not lower it.  (It may rise: the noise left inside these masks is
    the stronger noise near EMD-5168's filament.)"""
    name, volume, pixel, _ = masked_5168
    plain = solvent_like_noise(emd5168[0], estimate_scale(*emd5168), pixel)
    masked = solvent_like_noise(volume, estimate_scale(volume, pixel), pixel)
    assert masked.std() >= 0.8 * plain.std(), name


EXAMPLE = Path(__file__).resolve().parents[2] / "example_project" / "Class3D" / "job003"


@pytest.mark.parametrize("number", [1, 2, 3])
def test_example_project_classes_have_no_false_partial_confidence(number):
    """Class 1 had 0 < confidence < 0.5 in 91 % of its box and its solvent noise equalised ×3; the
    flattened voxels read 0.33 (issue 9)."""
    with mrcfile.open(EXAMPLE / f"run_it025_class{number:03d}.mrc", permissive=True) as mrc:
        volume, pixel = np.asarray(mrc.data, np.float32).copy(), float(mrc.voxel_size.x)
    estimate, equalised = _estimate(volume, pixel)
    c = estimate.confidence
    flat = volume == 0
    assert np.mean((c > 0) & (c < 0.5)) < 0.1
    assert np.percentile(c[flat], 99) <= CONFIDENCE_P99
    np.testing.assert_array_equal(equalised[flat], volume[flat])
    smooth = gaussian_filter(volume, 2)  # the solvent inside RELION's mask: the weakest 60 % of the rest
    solvent = ~flat & (smooth < np.percentile(smooth[~flat], 60))
    assert equalised[solvent].std() <= 1.25 * volume[solvent].std()
    assert estimate.settings.measurability.measurable


@pytest.mark.parametrize("extend", [6, 12])
def test_a_tight_envelope_mask_keeps_the_relative_occupancy(extend):
    """A soft molecular envelope (the molecule grown by ``extend`` Å, a 6 Å cosine edge, zeros outside:
    a post-processing mask) leaves little solvent; the domains still read their occupancy."""
    volume, particle, labels = _make(MODERATE_NOISE, 0, shape=(128, 128, 128))
    clean = synthetic.render(particle, volume.shape, 1.0)
    envelope = ndimage.binary_dilation(clean > 0.05 * clean.max(), iterations=extend)
    edge = np.clip(1 - ndimage.distance_transform_edt(~envelope) / 6, 0, 1)
    mask = (0.5 - 0.5 * np.cos(np.pi * edge)).astype(np.float32)
    masked_map = volume * mask
    plain, masked = estimate_scale(volume, 1.0), estimate_scale(masked_map, 1.0)
    expected = domain_medians(plain.scale, labels)
    found = domain_medians(masked.scale, labels)
    np.testing.assert_allclose(found / found[0], expected / expected[0], atol=0.03)
    assert masked.settings.measurability.measurable
    outside = mask < 0.25
    assert np.percentile(masked.confidence[outside], 99) <= CONFIDENCE_P99
    equalised = modify_map(masked_map, masked, 1.0)["equalised"]
    assert equalised[outside].std() <= SD_RATIO * masked_map[outside].std()


def test_masked_half_maps_leave_the_masked_region_out_of_the_noise_floor(moderate_map):
    """Masked halves agree where both are zero: their difference there is no noise and must not pull
    the floor (a median local maximum of the noise map) down."""
    volume, _, labels = moderate_map
    noise = synthetic.correlated_noise(volume.shape, 1.0, float(np.std(volume[labels == 0])), seed=11)
    r = np.sqrt(((np.indices(volume.shape) - 63.5) ** 2).sum(axis=0))
    mask = soft_edge(r, 50, 6)
    plain = measure(volume, 1.0, noise=noise).settings.noise_floor
    masked = measure(volume * mask, 1.0, noise=noise * mask).settings.noise_floor
    # the floor is local: its median over the masked box's inside is not quite the whole box's (measured
    # 13 % apart); the masked region pulling it down read 97 % below
    assert masked == pytest.approx(plain, rel=0.15)

"""Soft masks made the way relion_mask_create makes them, checked against the real program."""

from __future__ import annotations

import math
import shutil
import subprocess

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

from occupy_relion.regions import (
    MaskParameters,
    analyse_regions,
    region_mask,
    resample_selection,
    soft_mask,
    soften,
)


def raised_cosine(distance: float, width: float) -> float:
    return 0.5 + 0.5 * math.cos(math.pi * distance / width) if distance < width else 0.0


def blob(shape=(40, 44, 36), seed=0) -> np.ndarray:
    """An irregular binary object, clear of the box faces."""
    rng = np.random.default_rng(seed)
    field = ndimage.gaussian_filter(rng.standard_normal(shape), 3)
    binary = field > field.std()
    binary[:4] = binary[-4:] = False
    binary[:, :4] = binary[:, -4:] = False
    binary[:, :, :4] = binary[:, :, -4:] = False
    assert 0.02 < binary.mean() < 0.3  # several lumps, some close together
    return binary


def test_one_voxel_gets_relion_s_extension_and_raised_cosine_edge():
    binary = np.zeros((31, 31, 31), dtype=bool)
    binary[15, 15, 15] = True
    mask = soften(binary, 3.0, 6.0)
    assert mask.dtype == np.float32
    # extended: strictly closer than 3 px; then the edge by the distance to the extended mask
    expected = [1.0, 1.0, 1.0] + [raised_cosine(d, 6.0) for d in range(1, 8)]
    np.testing.assert_allclose(mask[15, 15, 15:25], expected, atol=1e-6)
    diagonal = mask[15, 15 + np.arange(8), 15 + np.arange(8)]
    assert diagonal[2] == 1.0 and diagonal[3] < 1.0  # 2√2 px inside, 3√2 px outside
    assert mask.min() == 0.0 and mask.max() == 1.0


def test_no_extension_and_no_soft_edge_leave_the_binary_map():
    binary = blob()
    np.testing.assert_array_equal(soften(binary, 0.0, 0.0), binary.astype(np.float32))
    assert not soften(np.zeros((8, 8, 8), bool), 3.0, 6.0).any()


@pytest.mark.relion
@pytest.mark.parametrize(("extend", "soft"), [(3, 6), (2.5, 4.3), (0, 5), (4, 0)])
def test_soft_edge_profile_matches_relion_mask_create(tmp_path, extend, soft):
    """Real relion_mask_create on the same binary map: identical to float precision."""
    if shutil.which("relion_mask_create") is None:
        pytest.skip("relion_mask_create not on PATH")
    binary = blob()
    with mrcfile.new(tmp_path / "bin.mrc") as mrc:
        mrc.set_data(binary.astype(np.float32))
        mrc.voxel_size = 2.0
    subprocess.run(["relion_mask_create", "--i", "bin.mrc", "--o", "relion.mrc", "--ini_threshold", "0.5",
                    "--extend_inimask", str(extend), "--width_soft_edge", str(soft)],
                   cwd=tmp_path, check=True, capture_output=True)
    relion = mrcfile.read(tmp_path / "relion.mrc")
    ours = soft_mask(binary, 2.0, MaskParameters(extend * 2.0, soft * 2.0))  # Å in, pixels as RELION's
    assert 0.2 < np.mean((relion > 0) & (relion < 1)) / np.mean(relion == 1) or soft == 0
    assert ours.shape == relion.shape
    np.testing.assert_allclose(ours, relion, atol=1e-5)
    assert 0 <= ours.min() and ours.max() <= 1


def test_mask_defaults_are_in_angstrom_with_a_floor_in_pixels():
    assert MaskParameters().resolved(1.0) == MaskParameters(3.0, 6.0)
    assert MaskParameters().resolved(0.8) == MaskParameters(3.0, 6.0)
    assert MaskParameters().resolved(3.5) == MaskParameters(3.5, 7.0)  # 1 and 2 pixels
    assert MaskParameters(5.0, 10.0).in_pixels(2.0) == (2.5, 5.0)
    with pytest.raises(ValueError):
        MaskParameters().in_pixels(0.0)


def test_a_coarse_selection_lands_on_the_fine_grid_in_place():
    """The analysis grid and the map's grid share the box and the origin (sample 0 at 0 Å)."""
    coarse_spacing, fine_spacing = 2.0, 1.5
    coarse_shape, fine_shape = (45, 48, 42), (60, 64, 56)

    def ball(shape, spacing, centre=(33.0, 40.0, 30.0), radius=12.0):
        z, y, x = np.indices(shape) * spacing
        return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius ** 2

    fine = resample_selection(ball(coarse_shape, coarse_spacing), fine_shape)
    truth = ball(fine_shape, fine_spacing)
    assert fine.dtype == bool and fine.shape == fine_shape
    assert abs(int(fine.sum()) - int(truth.sum())) <= 0.08 * truth.sum()
    assert np.mean(fine == truth) >= 0.99
    np.testing.assert_allclose(ndimage.center_of_mass(fine), ndimage.center_of_mass(truth), atol=0.3)
    same = ball(fine_shape, fine_spacing)
    np.testing.assert_array_equal(resample_selection(same, fine_shape), same)


def test_region_mask_is_one_on_the_region_and_checks_the_box(example_project):
    project = example_project
    analysis = analyse_regions(project.scale, project.confidence, project.spacing, project.lowpass)
    mask = region_mask(analysis, [1], project.shape, project.pixel_size)
    inside = resample_selection(analysis.selection([1]), project.shape)
    assert (mask[inside] == 1).all()
    np.testing.assert_array_equal(mask, region_mask(analysis, None, project.shape, project.pixel_size))
    assert mask.sum() > inside.sum()  # extended and soft-edged
    with pytest.raises(ValueError, match="does not cover"):
        region_mask(analysis, [1], project.shape, 1.0)

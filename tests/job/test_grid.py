"""The maps' common grid and reading class maps onto it: half maps, identical halves, bad grids."""

from __future__ import annotations

import numpy as np
import pytest

from occupy_relion.errors import InputError
from occupy_relion.job.grid import check_grid, empty_reason, read_class
from occupy_relion.relion.inputs import ClassInput, Inputs

from ..conftest import write_mrc

SHAPE = (16, 18, 20)


@pytest.fixture
def maps(tmp_path):
    """A class map and two different half maps, written at 2 Å."""
    rng = np.random.default_rng(4)
    arrays = {name: rng.standard_normal(SHAPE).astype(np.float32) for name in ("map", "half1", "half2")}
    paths = {name: str(write_mrc(tmp_path / f"{name}.mrc", array, 2.0)) for name, array in arrays.items()}
    return arrays, paths


def _class(paths, second: str, average: bool) -> ClassInput:
    """A class with half maps half1 and ``second``; with ``average`` its map is half 1 itself (Refine3D)."""
    return ClassInput(1, paths["half1"] if average else paths["map"], half_maps=(paths["half1"], paths[second]),
                      average_halves=average)


@pytest.mark.parametrize("average", [False, True])
def test_noise_is_half_the_difference_of_the_halves(maps, average):
    arrays, paths = maps
    read = read_class(_class(paths, "half2", average))
    np.testing.assert_allclose(read.noise, (arrays["half1"] - arrays["half2"]) / 2, atol=1e-6)
    expected = (arrays["half1"] + arrays["half2"]) / 2 if average else arrays["map"]
    np.testing.assert_allclose(read.volume, expected, atol=1e-6)
    assert not read.identical_halves


@pytest.mark.parametrize("average", [False, True])
def test_identical_halves_give_no_noise_in_both_cases(maps, average):
    """One behaviour whether the class map is a half map itself or not (they used to disagree)."""
    arrays, paths = maps
    read = read_class(_class(paths, "half1", average))
    assert read.noise is None and read.identical_halves
    np.testing.assert_array_equal(read.volume, arrays["half1"] if average else arrays["map"])


def test_without_noise_the_halves_are_not_read(maps, tmp_path):
    arrays, paths = maps
    missing = str(tmp_path / "gone.mrc")
    read = read_class(ClassInput(1, paths["map"], half_maps=(missing, missing)), with_noise=False)
    assert read.noise is None and not read.identical_halves
    np.testing.assert_array_equal(read.volume, arrays["map"])


def _inputs(pixel_size=None):
    return Inputs("test", "Class3D", "model.star", pixel_size)


def test_grid_refuses_a_map_of_another_size(maps, tmp_path):
    _, paths = maps
    other = str(write_mrc(tmp_path / "other.mrc", np.ones((16, 18, 22)), 2.0))
    with pytest.raises(InputError, match=r"other\.mrc: size 22x18x16 differs from .*map\.mrc \(20x18x16\)"):
        check_grid(_inputs(), [ClassInput(1, paths["map"]), ClassInput(2, other)], print)


def test_grid_checks_the_half_maps_too(maps, tmp_path):
    _, paths = maps
    other = str(write_mrc(tmp_path / "half_other.mrc", np.ones(SHAPE), 2.5))
    with pytest.raises(InputError, match=r"half_other\.mrc: pixel size 2\.5 Å differs"):
        check_grid(_inputs(), [ClassInput(1, paths["map"], half_maps=(paths["half1"], other))], print)


def test_pixel_size_from_the_model_when_the_header_has_none(tmp_path):
    path = str(write_mrc(tmp_path / "bare.mrc", np.ones(SHAPE), 0.0))
    warnings: list[str] = []
    grid = check_grid(_inputs(pixel_size=1.7), [ClassInput(1, path)], warnings.append)
    assert grid.pixel_size == 1.7 and grid.shape == SHAPE
    assert warnings and "no voxel size in the header; using 1.7 Å from model.star" in warnings[0]
    with pytest.raises(InputError, match="no voxel size in the header"):
        check_grid(_inputs(), [ClassInput(1, path)], warnings.append)


def test_a_differing_model_pixel_size_is_a_warning(maps):
    _, paths = maps
    warnings: list[str] = []
    assert check_grid(_inputs(pixel_size=2.2), [ClassInput(1, paths["map"])], warnings.append).pixel_size == 2.0
    assert len(warnings) == 1 and "differs from _rlnPixelSize 2.2 Å" in warnings[0]


def test_empty_maps():
    assert empty_reason(np.zeros(SHAPE)) == "all zeros"
    assert empty_reason(np.full(SHAPE, 3.0)) == "constant"
    assert empty_reason(np.arange(8.0).reshape(2, 2, 2)) is None

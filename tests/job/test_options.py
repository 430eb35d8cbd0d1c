"""Options: every range is checked by the core's parameter classes, and the error names the option."""

from __future__ import annotations

import math

import pytest

from occupy_relion.errors import InputError
from occupy_relion.job.options import JobOptions


@pytest.mark.parametrize("field, value, message", [
    ("mode", "fast", "--mode: 'fast' is not one of occupancy, resolution"),
    ("lowpass", -2.0, "--lowpass: must be a positive length in Å, not -2"),
    ("lowpass", math.inf, "--lowpass: must be a positive length in Å, not inf"),
])
def test_estimate_parameters_name_the_option(field, value, message):
    with pytest.raises(InputError) as error:
        JobOptions("E/", **{field: value}).scale_parameters()
    assert str(error.value) == message


@pytest.mark.parametrize("field, value, message", [
    ("amplify", 0.5, "--amplify: the power must be at least 1, not 0.5"),
    ("attenuate", math.nan, "--attenuate: the power must be at least 1, not nan"),
    ("sigmoid", 0.0, "--sigmoid: the power must be at least 1, not 0"),
    ("pivot", 1.0, "--pivot: must be between 0 and 1, not 1"),
    ("scale_limit", 0.0, "--scale_limit: must be between 0 and 1, not 0"),
    ("max_gain", 1.0, "--max_gain: must be above 1, not 1"),
])
def test_modify_parameters_name_the_option(field, value, message):
    with pytest.raises(InputError) as error:
        JobOptions("E/", **{field: value}).modify_parameters()
    assert str(error.value) == message


def test_threads():
    with pytest.raises(InputError, match="--j: at least 1 thread, not 0"):
        JobOptions("E/", threads=0)


def test_defaults_are_the_cores():
    options = JobOptions("E/")
    scale, modify = options.scale_parameters(), options.modify_parameters()
    assert (scale.mode, scale.lowpass) == ("occupancy", None)
    assert math.isinf(modify.amplify) and modify.attenuate is None and modify.scale_limit == 0.05


@pytest.mark.parametrize("field, value, message", [
    ("mask_extend", -1.0, "--mask_extend: must be a number of Å ≥ 0, not -1"),
    ("mask_soft_edge", math.inf, "--mask_soft_edge: must be a number of Å ≥ 0, not inf"),
    ("region_difference", 0.0, "--region_difference: must be between 0 and 1, not 0"),
])
def test_region_options_name_the_option(field, value, message):
    with pytest.raises(InputError) as error:
        JobOptions("E/", **{field: value})
    assert str(error.value) == message


def test_region_defaults_are_the_region_analysis():
    from occupy_relion.regions import MaskParameters, RegionParameters

    options = JobOptions("E/")
    assert options.mask_parameters() == MaskParameters()
    assert options.region_parameters() == RegionParameters()
    masks = JobOptions("E/", mask_extend=4.0, mask_soft_edge=8.0).mask_parameters().resolved(1.0)
    assert (masks.extend, masks.soft_edge) == (4.0, 8.0)

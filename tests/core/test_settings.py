"""The estimate's typed settings: ranges checked once, sources as enums, labels for every field."""

from __future__ import annotations

import dataclasses

import pytest

from occupy_relion.core import (
    EstimateSettings,
    ModifyParameters,
    NoiseFloorSource,
    ParameterError,
    ScaleParameters,
    SolventRegion,
)
from occupy_relion.labels import SETTING_LABELS


@pytest.mark.parametrize("make, name", [
    (lambda: ScaleParameters(mode="fast"), "mode"),
    (lambda: ScaleParameters(lowpass=0.0), "lowpass"),
    (lambda: ScaleParameters(kernel_radius=-1.0), "kernel_radius"),
    (lambda: ScaleParameters(tile=float("nan")), "tile"),
    (lambda: ScaleParameters(reference_quantile=1.0), "reference_quantile"),
    (lambda: ModifyParameters(amplify=0.9), "amplify"),
    (lambda: ModifyParameters(pivot=0.0), "pivot"),
    (lambda: ModifyParameters(scale_limit=1.5), "scale_limit"),
])
def test_parameter_classes_refuse_values_out_of_range(make, name):
    with pytest.raises(ParameterError) as error:
        make()
    assert error.value.name == name


def test_nyquist_depends_on_the_pixel_size():
    assert ScaleParameters(lowpass=3.0).resolved(1.5).lowpass == 3.0
    with pytest.raises(ParameterError, match="finer than Nyquist") as error:
        ScaleParameters(lowpass=3.0).resolved(2.0)
    assert error.value.name == "lowpass"


def test_resolved_lengths_follow_the_lowpass():
    resolved = ScaleParameters().resolved(4.0)
    assert (resolved.lowpass, resolved.kernel_radius, resolved.tile) == (12.0, 6.0, 24.0)


def test_every_setting_has_a_label():
    fields = {f.name for f in dataclasses.fields(EstimateSettings)} - {"warnings"}
    assert set(SETTING_LABELS) == fields


def test_sources_are_the_words_the_outputs_write():
    assert NoiseFloorSource("noise map") is NoiseFloorSource.NOISE_MAP
    assert SolventRegion.OUTSIDE_FLATTENED.label == "box outside the flattened solvent"
    assert len({s.label for s in SolventRegion}) == len(SolventRegion)

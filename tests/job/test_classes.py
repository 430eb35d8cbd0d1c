"""The per-class pipeline: pure (prints nothing, writes nothing) and one typed, frozen result."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from occupy_relion.core import ModifyParameters
from occupy_relion.result import ClassResult

from ..conftest import process_class


def test_pipeline_is_pure_and_returns_one_frozen_result(synthetic_maps, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    processed = process_class(synthetic_maps[1], 2.0, 2, modify=ModifyParameters(attenuate=2.0))
    assert capsys.readouterr() == ("", "") and list(tmp_path.iterdir()) == []
    result = processed.result
    assert isinstance(result, ClassResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.seconds = 1.0  # type: ignore[misc]
    assert list(processed.maps) == ["scale", "confidence", "equalised", "attenuated"]
    assert all(m.dtype == np.float32 and m.shape == (40, 40, 40) for m in processed.maps.values())
    assert result.outputs.attenuated == "External/job012/class002_attenuated.mrc" and result.outputs.sigmoid is None
    assert isinstance(result.settings.warnings, tuple)


def test_result_matches_its_maps(synthetic_maps):
    """The statistics and the report's view are of the maps that are written."""
    processed = process_class(synthetic_maps[0], 2.0)
    scale, confidence = processed.maps["scale"], processed.maps["confidence"]
    molecule = scale[(confidence >= 0.5) & (scale >= 0.05)]
    statistics = processed.result.statistics
    assert statistics.molecule_voxels == molecule.size
    assert statistics.scale_median == pytest.approx(float(np.median(molecule)), abs=1e-6)
    np.testing.assert_array_equal(processed.result.view.slices.scale[0], scale[20])


def test_each_map_is_handed_over_once_when_final_scale_and_confidence_first(synthetic_maps):
    """``ready`` (the driver writes what it is given, in the background) gets every map once, scale and
    confidence before the modified maps are made, each as it is final: nothing changes it afterwards."""
    from occupy_relion.core import ScaleParameters
    from occupy_relion.job.classes import ClassWork, finish_class, measure_class, normalise_class
    from occupy_relion.job.outputs import JobDirectory, class_outputs
    from occupy_relion.relion.inputs import ClassInput

    modify = ModifyParameters(attenuate=2.0)
    cls = ClassInput(1, "Class3D/job008/run_it025_class001.mrc", 0.5, 8.0)
    work = ClassWork(2.0, ScaleParameters(), modify, None, 1, lambda: None, unit=4.0)  # units restored in place
    volume = synthetic_maps[0] / np.float32(4.0)
    estimate = normalise_class(cls, measure_class(cls, volume, None, work), None, 1)
    handed: list[tuple[str, np.ndarray, np.ndarray]] = []
    processed = finish_class(cls, volume, estimate, work, class_outputs(JobDirectory.of("External/job012/"), 1, modify),
                             ready=lambda kind, array: handed.append((kind, array, array.copy())))
    assert [kind for kind, _, _ in handed] == ["scale", "confidence", "equalised", "attenuated"]
    for kind, array, at_hand_over in handed:
        assert array is processed.maps[kind]
        np.testing.assert_array_equal(array, at_hand_over)

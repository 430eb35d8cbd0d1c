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

"""occupancy.star: labels RELION knows for what a Scheme branches on; readable back; atomic."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from occupy_relion.regions import ClassCompleteness
from occupy_relion.relion.summary import (
    CLASSES_BLOCK,
    GENERAL_BLOCK,
    MEANINGS,
    NOT_MEASURED,
    class_row,
    general_table,
    read_summary,
    star_value,
    write_summary,
)
from occupy_relion.result import ClassOutputs

#: labels of RELION 3.1.3, 4.0.2 and 5.0.1 (EMDL::addLabel) used for values a Scheme may read
RELION_LABELS = {"rlnClassNumber", "rlnReferenceImage", "rlnClassDistribution", "rlnEstimatedResolution",
                 "rlnAverageValue", "rlnModelStarFile", "rlnNrClasses", "rlnPixelSize"}


def _row(template, number, completeness, attenuated=None, resolution=None):
    outputs = ClassOutputs(scale=f"External/job012/class{number:03d}_scale.mrc",
                           confidence=f"External/job012/class{number:03d}_confidence.mrc",
                           equalised=f"External/job012/class{number:03d}_equalised.mrc", attenuated=attenuated)
    result = replace(template, number=number, resolution=resolution, outputs=outputs, seconds=1.23456,
                     statistics=replace(template.statistics, scale_mean=0.3))
    measured = ClassCompleteness(number, completeness, median=0.9, partial_fraction=0.1, rank=number)
    return class_row(result, measured, f"External/job012/class{number:03d}_occupancy.mrc")


def test_class_numbers_are_edge_free_or_not_measured(class_result):
    """_rlnAverageValue is the completeness, -1 when no region analysis measured it; the whole-molecule
    scale (edges included) keeps its own, explicit labels."""
    row = _row(class_result, 2, 0.75)
    assert (row["rlnAverageValue"], row["occupyCompletenessRank"], row["occupyMedianOccupancy"],
            row["occupyPartialFraction"]) == (0.75, 2, 0.9, 0.1)
    assert row["occupyMoleculeScaleMean"] == 0.3 and "rlnStandardDeviationValue" not in row
    assert row["occupyOccupancyMap"] == "External/job012/class002_occupancy.mrc"
    unmeasured = class_row(class_result)
    assert (unmeasured["rlnAverageValue"], unmeasured["occupyCompletenessRank"], unmeasured["occupyMedianOccupancy"],
            unmeasured["occupyPartialFraction"]) == (NOT_MEASURED, 0, NOT_MEASURED, NOT_MEASURED)
    assert "occupyOccupancyMap" not in unmeasured
    assert set(MEANINGS) <= set(row) | {"occupyRegionOccupancy"} | {"occupyMoleculeScaleMean"}


def test_round_trip(tmp_path, class_result):
    general = general_table(
        input_description="--in_parts Class3D/job008/run_it025_data.star -> Class3D/job008/run_it025_model.star",
        input_kind="Class3D", model_path="Class3D/job008/run_it025_model.star", relion_version="5.0",
        relion_version_source="default_pipeline.star", class_count=3, processed=[1, 2], skipped=[3],
        pixel_size=1.5, parameters={"mode": "occupancy", "lowpass": None, "amplify": math.inf, "joint": True},
        settings={"lowpass_angstrom": 8.0, "working_shape": (10, 10, 10)}, joint_reference=0.25,
        program_version="0.1.0",
    )
    rows = [_row(class_result, 1, 0.8, attenuated="External/job012/class001_attenuated.mrc"),
            _row(class_result, 2, 0.4, attenuated="External/job012/class002_attenuated.mrc")]
    path = write_summary(tmp_path / "occupancy.star", general, rows)
    text = path.read_text()
    assert f"data_{GENERAL_BLOCK}" in text and f"data_{CLASSES_BLOCK}" in text
    general_back, classes = read_summary(path)
    assert general_back["rlnModelStarFile"] == "Class3D/job008/run_it025_model.star"
    assert str(general_back["occupyClassesSkipped"]) == "3" and general_back["occupyJoint"] == 1
    assert math.isinf(general_back["occupyAmplify"]) and general_back["occupyLowpass"] == "None"
    assert general_back["occupyWorkingShape"] == "10,10,10"
    assert list(classes["rlnClassNumber"]) == [1, 2]
    assert list(classes["rlnAverageValue"]) == pytest.approx([0.8, 0.4])
    assert list(classes["rlnEstimatedResolution"]) == [0.0]*2  # none known: 0, as RELION writes it
    assert classes["occupyAttenuatedMap"][1] == "External/job012/class002_attenuated.mrc"
    assert classes["occupySolventRegion"][0] == class_result.settings.solvent_region.value  # an enum, as its words
    assert classes["occupyNoiseFloorSource"][0] == "solvent voxels"
    assert classes["occupySeconds"][0] == pytest.approx(1.235)
    assert RELION_LABELS <= set(classes.columns) | set(general_back)
    assert not list(tmp_path.glob(".occupy-tmp-*"))


def _summary(tmp_path, rows):
    general = general_table(
        input_description="x", input_kind="Class3D", model_path=None, relion_version="5.0",
        relion_version_source="default", class_count=len(rows), processed=[1], skipped=[], pixel_size=1.0,
        parameters={}, settings={}, joint_reference=None, program_version="0.1.0")
    return write_summary(tmp_path / "occupancy.star", general, rows)


def test_display_opens_the_block_with_the_maps(tmp_path, class_result):
    """relion_display (the GUI's Display) shows a STAR file's first block: it must list the maps."""
    text = _summary(tmp_path, [_row(class_result, 1, 0.8)]).read_text()
    blocks = [line for line in text.splitlines() if line.startswith("data_")]
    assert blocks == [f"data_{CLASSES_BLOCK}", f"data_{GENERAL_BLOCK}"]
    first = text[:text.index(f"data_{GENERAL_BLOCK}")]
    assert "_rlnReferenceImage" in first and "External/job012/class001_equalised.mrc" in first


def test_resolution_is_written_as_relion_wrote_it(tmp_path, shared_relion, class_result):
    """RELION writes 1/res, inf when no shell had signal (run_it000_model.star), 0 when not estimated."""
    assert "_rlnCurrentResolution                            inf" in (
        shared_relion / "relion31_project/Class3D/job003/run_it000_model.star").read_text()
    rows = [_row(class_result, 1, 0.8), _row(class_result, 2, 0.5, resolution=math.inf),
            _row(class_result, 3, 0.4, resolution=12.5)]
    _, classes = read_summary(_summary(tmp_path, rows))
    assert classes["rlnEstimatedResolution"][0] == 0.0
    assert math.isinf(classes["rlnEstimatedResolution"][1]) and classes["rlnEstimatedResolution"][2] == 12.5


def test_star_values():
    assert star_value(None) == "None" and star_value(True) == 1 and star_value((1.0, 2.5)) == "1,2.5"

"""Locating model.star files and class maps in real RELION 3.1, 4.0 and 5.0 outputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from occupy_relion.errors import InputError
from occupy_relion.relion.inputs import load_inputs, model_in_directory, read_model

from ..conftest import copy_tree, write_model, write_mrc


def test_in_parts_relion31(relion31_copy, in_project):
    in_project(relion31_copy)
    inputs = load_inputs(in_parts="Class3D/job003/run_it010_data.star")
    assert inputs.model_path == "Class3D/job003/run_it010_model.star"
    assert inputs.kind == "Class3D" and inputs.pixel_size == pytest.approx(3.5)
    assert [c.number for c in inputs.classes] == [1, 2]
    assert [c.map_path for c in inputs.classes] == ["Class3D/job003/run_it010_class001.mrc",
                                                   "Class3D/job003/run_it010_class002.mrc"]
    assert inputs.classes[0].distribution == pytest.approx(0.500767)
    assert inputs.classes[1].resolution == pytest.approx(32.0)
    assert all(c.half_maps is None for c in inputs.classes)
    assert "--in_parts Class3D/job003/run_it010_data.star" in inputs.source


def test_relion50_by_data_optimiser_and_directory(relion50_copy, in_project):
    in_project(relion50_copy)
    by_data = load_inputs(in_parts="Class3D/job003/run_it005_data.star")
    by_optimiser = load_inputs(model="Class3D/job003/run_it005_optimiser.star")
    by_directory = load_inputs(model="Class3D/job003/")
    for inputs in (by_data, by_optimiser, by_directory):
        assert Path(inputs.model_path) == Path("Class3D/job003/run_it005_model.star")
        assert [round(c.distribution, 6) for c in inputs.classes] == [0.503397, 0.496603]
    assert "_rlnModelStarFile" in by_optimiser.source
    assert "last iteration (5)" in by_directory.source


def test_model_option_wins_over_in_parts(relion31_copy, in_project):
    in_project(relion31_copy)
    shutil.copy("Class3D/job003/run_it010_model.star", "Class3D/job003/copy_model.star")
    inputs = load_inputs(model="Class3D/job003/copy_model.star", in_parts="Class3D/job003/run_it010_data.star")
    assert inputs.model_path.endswith("copy_model.star")


def test_job_directory_takes_the_last_iteration_of_continued_runs(relion31_copy):
    job = relion31_copy / "Class3D" / "job003"
    model, how = model_in_directory(job)
    assert model.name == "run_it010_model.star" and "10" in how
    shutil.copy(job / "run_it010_model.star", job / "run_ct10_it012_model.star")
    shutil.copy(job / "run_it010_model.star", job / "run_it011_model.star")
    model, _ = model_in_directory(job)
    assert model.name == "run_ct10_it012_model.star"


def test_job_directory_without_model(tmp_path):
    (tmp_path / "Class3D" / "job001").mkdir(parents=True)
    with pytest.raises(InputError, match="no model.star"):
        model_in_directory(tmp_path / "Class3D" / "job001")


def test_refine3d_final_model_with_half_maps(relion31_copy, in_project):
    in_project(relion31_copy)
    inputs = load_inputs(model="Refine3D/job010/")
    assert inputs.kind == "Refine3D" and inputs.model_path.endswith("run_model.star")
    (only,) = inputs.classes
    assert only.map_path == "Refine3D/job010/run_class001.mrc"
    assert only.half_maps == ("Refine3D/job010/run_half1_class001_unfil.mrc",
                              "Refine3D/job010/run_half2_class001_unfil.mrc")
    assert not only.average_halves


def test_refine3d_half1_model_averages_the_halves(tmp_path, in_project):
    job = tmp_path / "Refine3D" / "job020"
    for half in (1, 2):
        write_mrc(job / f"run_it005_half{half}_class001.mrc", np.ones((8, 8, 8)) * half)
    write_model(job / "run_it005_half1_model.star", ["Refine3D/job020/run_it005_half1_class001.mrc"], [1.0], 2.0, 8)
    in_project(tmp_path)
    inputs = load_inputs(model="Refine3D/job020/")
    (only,) = inputs.classes
    assert only.average_halves and only.half_maps[1].endswith("run_it005_half2_class001.mrc")
    assert "half 1" in inputs.source


def test_class2d_model_is_rejected(shared_relion, tmp_path):
    model = shutil.copy(shared_relion / "relion40_class2d_metadata/run_it025_model.star",
                        tmp_path / "run_it025_model.star")
    with pytest.raises(InputError) as error:
        load_inputs(model=str(model))
    assert "2D model.star" in str(error.value) and str(model) in str(error.value)


def test_tutorial_metadata_parses_and_names_missing_maps(shared_relion, tmp_path, in_project):
    project = copy_tree(shared_relion / "relion31_tutorial_metadata", tmp_path / "tutorial")
    general, table, name = read_model(project / "Class3D/job016/run_it025_model.star")
    assert name == "model_classes" and len(table) == 4 and general["rlnPixelSize"] == pytest.approx(3.54)
    _, table, _ = read_model(project / "InitialModel/job015/run_it150_model.star")
    assert "rlnSGDGradientImage" in table.columns
    _, table, _ = read_model(project / "Refine3D/job019/run_it020_half1_model.star")
    assert table["rlnReferenceImage"][0].endswith("run_it020_half1_class001.mrc")
    in_project(project)
    with pytest.raises(InputError) as error:
        load_inputs(model="Class3D/job016/run_it025_model.star")
    assert "Class3D/job016/run_it025_class001.mrc" in str(error.value) and "run_it025_model.star" in str(error.value)
    # with a map in place, the InitialModel reads as one class of its job type
    write_mrc(project / "InitialModel/job015/run_it150_class001.mrc", np.ones((8, 8, 8)))
    inputs = load_inputs(model="InitialModel/job015/")
    assert inputs.kind == "InitialModel" and len(inputs.classes) == 1


def test_multibody_bodies(tmp_path, in_project):
    job = tmp_path / "MultiBody" / "job030"
    names = []
    for body in (1, 2):
        write_mrc(job / f"run_body{body:03d}.mrc", np.ones((8, 8, 8)))
        names.append(f"MultiBody/job030/run_body{body:03d}.mrc")
    for half in (1, 2):
        write_mrc(job / f"run_half{half}_body001_unfil.mrc", np.ones((8, 8, 8)))
    text = ("data_model_general\n\n_rlnReferenceDimensionality 3\n_rlnPixelSize 2.0\n_rlnNrBodies 2\n\n"
            "data_model_bodies\n\nloop_\n_rlnReferenceImage #1\n_rlnAccuracyRotations #2\n"
            "_rlnEstimatedResolution #3\n" + "\n".join(f"{n} 2.0 8.5" for n in names) + "\n")
    (job / "run_model.star").write_text(text)
    in_project(tmp_path)
    inputs = load_inputs(model="MultiBody/job030/")
    assert inputs.kind == "MultiBody"
    assert [c.number for c in inputs.classes] == [1, 2]
    assert inputs.classes[0].distribution is None and inputs.classes[0].resolution == pytest.approx(8.5)
    assert inputs.classes[0].half_maps is not None and inputs.classes[1].half_maps is None


def test_lone_map_and_class_selection(relion31_copy, in_project):
    in_project(relion31_copy)
    lone = load_inputs(in_3dref="Refine3D/job010/run_class001.mrc")
    assert lone.kind == "map" and lone.model_path is None and len(lone.classes) == 1
    assert lone.classes[0].half_maps is not None  # found by RELION's naming
    chosen = load_inputs(in_parts="Class3D/job003/run_it010_data.star",
                         in_3dref="Class3D/job003/run_it010_class002.mrc")
    assert [c.number for c in chosen.classes] == [2]
    with pytest.raises(InputError, match="not one of the class maps"):
        load_inputs(in_parts="Class3D/job003/run_it010_data.star", in_3dref="Refine3D/job010/run_class001.mrc")


@pytest.mark.parametrize("kwargs, message", [
    ({}, "no input"),
    ({"in_parts": "Class3D/job003/run_it009_data.star"}, "file not found"),
    ({"in_parts": "Select/job011/particles.star"}, "not a _data.star"),
    ({"in_parts": "Class3D/job003/run_it004_data.star"}, "no model.star beside it"),
    ({"model": "Class3D/job003/run_it010_data.star.bak"}, "file not found"),
    ({"model": "Class3D/job003/run_it010_optimiser_broken_optimiser.star"}, "does not exist"),
    ({"model": "Class3D/job003/empty_model.star"}, "no classes"),
    ({"model": "Class3D/job003/note.txt"}, "not a"),
    ({"in_3dref": "Class3D/job003/missing.mrc"}, "file not found"),
])
def test_bad_inputs_name_the_file(relion31_copy, in_project, kwargs, message):
    in_project(relion31_copy)
    job = relion31_copy / "Class3D" / "job003"
    (relion31_copy / "Select" / "job011").mkdir(parents=True)
    shutil.copy(job / "run_it010_data.star", relion31_copy / "Select/job011/particles.star")
    shutil.copy(job / "run_it010_data.star", job / "run_it004_data.star")
    text = (job / "run_it010_optimiser.star").read_text().replace("run_it010_model.star", "run_it099_model.star")
    (job / "run_it010_optimiser_broken_optimiser.star").write_text(text)
    (job / "empty_model.star").write_text("data_model_general\n\n_rlnReferenceDimensionality 3\n\n"
                                          "data_model_classes\n\nloop_\n_rlnReferenceImage #1\n")
    with pytest.raises(InputError) as error:
        load_inputs(**kwargs)
    text = str(error.value)
    assert message in text and "\n" not in text
    named = [v for v in kwargs.values()]
    assert not named or any(Path(v).name in text or v in text for v in named)


def test_model_from_outside_the_project(relion31_copy, tmp_path, in_project):
    """Maps listed relative to the project are found when the model.star is given from elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    in_project(elsewhere)
    inputs = load_inputs(model=str(relion31_copy / "Class3D/job003/run_it010_model.star"))
    assert all(Path(c.map_path).exists() for c in inputs.classes)
    listed = relion31_copy / "Class3D/job003/run_it010_class001.mrc"
    assert Path(inputs.classes[0].map_path).resolve() == listed.resolve()

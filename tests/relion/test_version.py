"""RELION version of a project, from real default_pipeline.star files of 3.1, 4.0 and 5.0."""

from __future__ import annotations

import shutil

import pytest

from occupy_relion.errors import InputError
from occupy_relion.relion.version import DEFAULT, detect_version, parse_version, version_from_pipeline


@pytest.mark.parametrize("folder, expected", [
    ("relion31_project", "3.1"),
    ("relion40_class2d_metadata", "4.0"),
    ("relion50_project", "5.0"),
])
def test_real_pipelines(shared_relion, tmp_path, folder, expected):
    pipeline = shutil.copy(shared_relion / folder / "default_pipeline.star", tmp_path / "default_pipeline.star")
    assert version_from_pipeline(pipeline) == expected
    found = detect_version(tmp_path)
    assert found.version == expected and found.source == "default_pipeline.star"


def test_a_new_project_does_not_tell_3_1_from_4_0(tmp_path):
    pipeline = tmp_path / "default_pipeline.star"
    pipeline.write_text("\n# version 30001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter 1\n")
    assert version_from_pipeline(pipeline) is None  # both write "# version 30001"
    assert detect_version(tmp_path).version == DEFAULT


def test_forced_version_wins(shared_relion, tmp_path):
    shutil.copy(shared_relion / "relion31_project/default_pipeline.star", tmp_path / "default_pipeline.star")
    found = detect_version(tmp_path, forced="5")
    assert found.version == "5.0" and found.source == "--relion_version"


def test_no_pipeline_gives_the_default(tmp_path):
    found = detect_version(tmp_path)
    assert found.version == DEFAULT and "default" in found.source
    (tmp_path / "default_pipeline.star").write_text("garbage\n")
    assert detect_version(tmp_path).version == DEFAULT


@pytest.mark.parametrize("text, expected", [
    ("3", "3.1"), ("3.1", "3.1"), ("31", "3.1"), ("3.1.3", "3.1"), ("4", "4.0"), ("4.0.2", "4.0"),
    ("5", "5.0"), ("5.0", "5.0"), ("relion-5.0.1", "5.0"), (" 50 ", "5.0"),
])
def test_parse_version(text, expected):
    assert parse_version(text) == expected


@pytest.mark.parametrize("text", ["2.1", "6", "latest", ""])
def test_parse_version_rejects(text):
    with pytest.raises(InputError, match="--relion_version"):
        parse_version(text)

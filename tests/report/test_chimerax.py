"""occupy.cxc: names every map that exists and none that does not; paths work from the job directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from occupy_relion.report.chimerax import chimerax_script
from occupy_relion.report.style import chimerax_palette

OPEN = re.compile(r'^#?\s*open "([^"]+)"', re.MULTILINE)


def _named(script: str) -> list[str]:
    """Every path the script opens, commented-out lines included."""
    return OPEN.findall(script)


def _script(project, results, job: str) -> str:
    """The script as the job writes it, without rendering a PDF."""
    return chimerax_script(results, job_dir=project / job, project_dir=project)


def test_names_every_map_that_exists_relative_to_the_job_directory(project, results, job):
    script = _script(project, results, job)
    job_dir = project / job
    named = _named(script)
    # ChimeraX runs a .cxc from its own directory: every name must resolve from there
    for name in named:
        assert not os.path.isabs(name)
        assert (job_dir / name).is_file(), name
    resolved = {(job_dir / name).resolve() for name in named}
    for result in results:
        for path in (result.input_path, result.outputs.scale, result.outputs.equalised):
            assert (project / path).resolve() in resolved, path


def test_names_no_map_that_does_not_exist(project, results, job):
    equalised = project / results[1].outputs.equalised
    equalised.unlink()
    (project / results[2].outputs.scale).unlink()
    script = _script(project, results, job)
    named = [(project / job / name).resolve() for name in _named(script)]
    assert all(path.is_file() for path in named)
    assert equalised.resolve() not in named
    assert "class 3: no scale map; shown uncoloured" in script
    assert "color sample #3 " not in script  # class 3 is model #3 and has nothing to be coloured by


def test_class_without_any_map_is_left_out(project, results, job):
    for path in (results[0].input_path, results[0].outputs.equalised):
        (project / path).unlink()
    script = _script(project, results, job)
    assert 'name "class 1"' not in script
    assert "class 1: neither its input nor its equalised map exists" in script
    assert 'name "class 2"' in script and 'name "class 3"' in script


def test_equalised_map_stands_in_for_a_missing_input(project, results, job):
    (project / results[1].input_path).unlink()
    script = _script(project, results, job)
    assert re.search(r'^open "class002_equalised\.mrc" name "class 2"$', script, re.MULTILINE)


def test_same_palette_rule_and_hidden_scale_maps(project, results, job):
    script = _script(project, results, job)
    lines = script.splitlines()
    assert lines.count("hide #4-6 models") == 1
    colourings = [line for line in lines if line.startswith("color sample")]
    assert colourings == [f"color sample #{k} map #{k + 3} palette {chimerax_palette()} range 0,1" for k in (1, 2, 3)]
    for k, summary in enumerate(results, start=1):
        level = re.search(rf"^volume #{k} level (\S+) style surface", script, re.MULTILINE)
        assert float(level.group(1)) == pytest.approx(summary.view.contour_level, rel=1e-5)
    assert sum(line.startswith("key ") for line in lines) == 1
    assert "tile #1-3" in lines
    assert [f"view position #{k + 3} sameAsModels #{k}" for k in (1, 2, 3)] == \
        [line for line in lines if line.startswith("view position")]


def test_paths_do_not_depend_on_the_current_directory(project, results, job, tmp_path, monkeypatch):
    """project_dir given explicitly, run from elsewhere, job_dir absolute: the same script."""
    expected = chimerax_script(results, job_dir=project / job, project_dir=project)
    monkeypatch.chdir(project)
    from_project = chimerax_script(results, job_dir=Path(job), project_dir=Path("."))
    monkeypatch.chdir(tmp_path)
    from_elsewhere = chimerax_script(results, job_dir=project / job, project_dir=project)
    strip = lambda text: [line for line in text.splitlines() if "chimerax " not in line]  # noqa: E731
    assert strip(from_project) == strip(expected) == strip(from_elsewhere)


def test_default_project_directory_is_the_current_directory(project, results, job, monkeypatch):
    monkeypatch.chdir(project)
    named = _named(chimerax_script(results, job_dir=job, project_dir="."))  # as the job calls it, from the project
    assert named and all((project / job / name).is_file() for name in named)


def test_single_class_is_not_tiled(project, results, job):
    script = _script(project, results[:1], job)
    assert "tile" not in script.replace("tiled", "")
    assert "color sample #1 map #2 " in script


def test_commands_carry_no_end_of_line_comments(project, results, job):
    """ChimeraX reads '#' only as a model spec or a colour inside a command: no trailing comments."""
    script = _script(project, results, job)
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert commands
    for line in commands:
        for match in re.finditer("#", line):
            rest = line[match.end():]
            assert re.match(r"\d|[0-9a-f]{6}\b", rest), line

"""occupy.cxc: names every map that exists and none that does not; paths work from the job directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from occupy_relion.report import CONTOUR_SIGMAS, write_report
from occupy_relion.report.chimerax import chimerax_script
from occupy_relion.report.style import chimerax_palette

OPEN = re.compile(r'^#?\s*open "([^"]+)"', re.MULTILINE)


def _named(script: str) -> list[str]:
    """Every path the script opens, commented-out lines included."""
    return OPEN.findall(script)


def _script(project, summaries, job, **kwargs) -> str:
    write_report(project / job, {}, summaries, project_dir=project, **kwargs)
    return (project / job / "occupy.cxc").read_text()


def test_names_every_map_that_exists_relative_to_the_job_directory(project, summaries, job, paths_of):
    script = _script(project, summaries, job)
    job_dir = project / job
    named = _named(script)
    # ChimeraX runs a .cxc from its own directory: every name must resolve from there
    for name in named:
        assert not os.path.isabs(name)
        assert (job_dir / name).is_file(), name
    resolved = {(job_dir / name).resolve() for name in named}
    for summary in summaries:
        for key in ("input_path", "scale_path", "equalised_path"):
            assert (project / getattr(summary, key)).resolve() in resolved, key


def test_names_no_map_that_does_not_exist(project, summaries, job, paths_of):
    paths = paths_of(2)
    (project / paths["equalised_path"]).unlink()
    (project / paths_of(3)["scale_path"]).unlink()
    script = _script(project, summaries, job)
    named = [(project / job / name).resolve() for name in _named(script)]
    assert all(path.is_file() for path in named)
    assert (project / paths["equalised_path"]).resolve() not in named
    assert "class 3: no scale map; shown uncoloured" in script
    assert "color sample #3 " not in script  # class 3 is model #3 and has nothing to be coloured by


def test_class_without_any_map_is_left_out(project, summaries, job, paths_of):
    for key in ("input_path", "equalised_path"):
        (project / paths_of(1)[key]).unlink()
    script = _script(project, summaries, job)
    assert 'name "class 1"' not in script
    assert "class 1: neither its input nor its equalised map exists" in script
    assert 'name "class 2"' in script and 'name "class 3"' in script


def test_equalised_map_stands_in_for_a_missing_input(project, summaries, job, paths_of):
    (project / paths_of(2)["input_path"]).unlink()
    script = _script(project, summaries, job)
    assert re.search(r'^open "class002_equalised\.mrc" name "class 2"$', script, re.MULTILINE)


def test_same_palette_rule_and_hidden_scale_maps(project, summaries, job, paths_of):
    script = _script(project, summaries, job)
    lines = script.splitlines()
    assert lines.count("hide #4-6 models") == 1
    colourings = [line for line in lines if line.startswith("color sample")]
    assert colourings == [f"color sample #{k} map #{k + 3} palette {chimerax_palette()} range 0,1" for k in (1, 2, 3)]
    for k, summary in enumerate(summaries, start=1):
        level = re.search(rf"^volume #{k} level (\S+) style surface", script, re.MULTILINE)
        assert float(level.group(1)) == pytest.approx(summary.contour_level, rel=1e-5)
        assert summary.contour_level == pytest.approx(
            summary.settings["solvent_mean"] + CONTOUR_SIGMAS * summary.noise_sd)
    assert sum(line.startswith("key ") for line in lines) == 1
    assert "tile #1-3" in lines
    assert [f"view position #{k + 3} sameAsModels #{k}" for k in (1, 2, 3)] == \
        [line for line in lines if line.startswith("view position")]


def test_paths_do_not_depend_on_the_current_directory(project, summaries, job, paths_of, tmp_path, monkeypatch):
    """project_dir given explicitly, run from elsewhere, job_dir absolute: the same script."""
    expected = chimerax_script(summaries, job_dir=project / job, project_dir=project)
    monkeypatch.chdir(project)
    from_project = chimerax_script(summaries, job_dir=Path(job), project_dir=Path("."))
    monkeypatch.chdir(tmp_path)
    from_elsewhere = chimerax_script(summaries, job_dir=project / job, project_dir=project)
    strip = lambda text: [line for line in text.splitlines() if "chimerax " not in line]  # noqa: E731
    assert strip(from_project) == strip(expected) == strip(from_elsewhere)


def test_default_project_directory_is_the_current_directory(project, summaries, job, paths_of, monkeypatch):
    monkeypatch.chdir(project)
    write_report(job, {}, summaries)  # as the job calls it, from the project directory
    named = _named((project / job / "occupy.cxc").read_text())
    assert named and all((project / job / name).is_file() for name in named)


def test_single_class_is_not_tiled(project, summaries, job, paths_of):
    script = _script(project, summaries[:1], job)
    assert "tile" not in script.replace("tiled", "")
    assert "color sample #1 map #2 " in script


def test_commands_carry_no_end_of_line_comments(project, summaries, job, paths_of):
    """ChimeraX reads '#' only as a model spec or a colour inside a command: no trailing comments."""
    script = _script(project, summaries, job)
    commands = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert commands
    for line in commands:
        for match in re.finditer("#", line):
            rest = line[match.end():]
            assert re.match(r"\d|[0-9a-f]{6}\b", rest), line

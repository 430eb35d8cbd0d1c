"""occupy.cxc: names every map that exists and none that does not; paths work from the job directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from scipy import ndimage

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
    # nothing moves a model (tile would separate a map from its hidden colouring map); one class shown
    assert not [line for line in lines if line.split()[:1] in (["tile"], ["move"], ["turn"])]
    assert [line for line in lines if line.startswith("view")] == ["view"]
    assert "hide #2-3 models" in lines


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


def test_single_class_is_not_hidden(project, results, job):
    script = _script(project, results[:1], job)
    assert "tile" not in script
    assert "hide #1 " not in script
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


# ---------------------------------------------------------------------------------------------
# with the regions: the colour of the surface the script draws, on the example project


def _model_paths(script: str) -> dict[int, str]:
    """Model number → the path its ``open`` line names (models are numbered in opening order)."""
    opened = re.findall(r'^open "([^"]+)" name "[^"]+"$', script, re.MULTILINE)
    return {k: path for k, path in enumerate(opened, start=1)}


def _isosurface_points(volume: np.ndarray, level: float, pixel: float) -> np.ndarray:
    """Where the map crosses ``level`` along the grid edges (z, y, x Å from voxel 0): the vertices of
    the marching-cubes surface ChimeraX draws at that level."""
    points = []
    for axis in range(3):
        low = np.take(volume, np.arange(volume.shape[axis] - 1), axis=axis)
        high = np.take(volume, np.arange(1, volume.shape[axis]), axis=axis)
        crossing = (low - level) * (high - level) < 0
        where = np.argwhere(crossing).astype(np.float64)
        where[:, axis] += (level - low[crossing]) / (high[crossing] - low[crossing])
        points.append(where * pixel)
    return np.concatenate(points)


def _sample(path: Path, points: np.ndarray) -> np.ndarray:
    """Trilinear values of a map at points (z, y, x Å), in the frame of its header (as ChimeraX)."""
    with mrcfile.open(path) as mrc:
        data = np.asarray(mrc.data, dtype=np.float32)
        step = float(mrc.voxel_size.x)
        origin = np.array([mrc.header.origin.z, mrc.header.origin.y, mrc.header.origin.x], dtype=np.float64)
    return ndimage.map_coordinates(data, ((points - origin) / step).T, order=1, mode="nearest")


def _surface_colours(example_regions) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per class: (domain of each surface point, the colour value the script samples there)."""
    project = example_regions
    job_dir = project.root / project.job
    script = chimerax_script(project.results, job_dir=job_dir, project_dir=project.root, regions=project.regions)
    paths = _model_paths(script)
    out = {}
    for line in script.splitlines():
        if not line.startswith("color sample"):
            continue
        shown, colouring = (int(n) for n in re.match(r"color sample #(\d+) map #(\d+) ", line).groups())
        number = int(re.search(r"class(\d{3})_occupancy", paths[colouring]).group(1))
        level = float(re.search(rf"^volume #{shown} level (\S+) ", script, re.MULTILINE).group(1))
        with mrcfile.open(job_dir / paths[shown]) as mrc:
            volume, pixel = np.asarray(mrc.data, dtype=np.float32), float(mrc.voxel_size.x)
        points = _isosurface_points(volume, level, pixel)
        out[number] = (project.domain_of(points, margin=2 * pixel), _sample(job_dir / paths[colouring], points))
    return out


@pytest.mark.parametrize("which", ["example_regions", "synthetic_regions"])
def test_regions_script_draws_occupancy_at_the_full_end_and_the_half_domain_apart(request, which):
    """Domain 4 present / absent / half (the example project; a synthetic one): the colour on the
    isosurface the script draws, per domain, against the truth."""
    project = request.getfixturevalue(which)
    colours = _surface_colours(project)
    assert sorted(colours) == [1, 2, 3]
    truth = project.truth
    drawn_variable = {}
    for number, (domain, value) in colours.items():
        assert np.count_nonzero(domain == 0) < 0.02 * domain.size, "noise drawn away from every domain"
        for k in range(1, 5):
            here = value[domain == k]
            expected = truth[number - 1][k - 1]
            if expected == 1.0:
                assert here.size > 100
                assert np.median(here) >= 0.85 and np.mean(here >= 0.85) >= 0.9, (number, k)
            elif expected == 0.5:
                assert abs(np.median(here) - 0.5) <= 0.1, (number, k, np.median(here))
                assert np.mean((here > 0.3) & (here < 0.7)) >= 0.6, (number, k)
            if k == 4:
                drawn_variable[number] = here.size
    # the absent domain is not drawn in its class (a few surface points of its neighbours lie in its ball)
    assert drawn_variable[2] < 0.1 * drawn_variable[1]


def test_regions_script_opens_masks_hidden_and_never_moves_models(example_regions):
    project = example_regions
    job_dir = project.root / project.job
    script = chimerax_script(project.results, job_dir=job_dir, project_dir=project.root, regions=project.regions)
    paths = _model_paths(script)
    for name in paths.values():
        assert (job_dir / name).is_file() and not os.path.isabs(name)
    masks = [k for k, name in paths.items() if name.endswith("_mask.mrc")]
    assert [paths[k] for k in masks] == ["region001_mask.mrc", "variable_mask.mrc"]
    hidden = set()
    for spec in re.findall(r"^hide #(\S+) models$", script, re.MULTILINE):
        first, _, last = spec.partition("-")
        hidden |= set(range(int(first), int(last or first) + 1))
    occupancy = [k for k, name in paths.items() if name.endswith("_occupancy.mrc")]
    assert set(masks) | set(occupancy) | {2, 3} == hidden  # class 1 alone is shown
    commands = [line.split()[0] for line in script.splitlines() if line and not line.startswith("#")]
    assert not {"tile", "move", "turn"} & set(commands)
    assert all(line == "view" for line in script.splitlines() if line.startswith("view"))
    levels = [float(v) for v in re.findall(r"^volume #\d level (\S+) ", script, re.MULTILINE)]
    above_solvent = [level - c.settings.solvent_mean for level, c in zip(levels, project.results)]
    assert len(levels) == 3 and max(above_solvent) - min(above_solvent) < 1e-4 * max(above_solvent)  # one rule
    full_density = project.regions.analysis.full_level * max(c.settings.reference_value for c in project.results)
    assert above_solvent[0] == pytest.approx(0.3 * full_density, rel=1e-4)

"""End to end under real RELION 3.1: install our Schedule into a tiny project and run ``relion_scheduler``.

The Schedule must create a Class3D job and our External job on its last iteration, and RELION must
register our outputs in default_pipeline.star.  Kept small (box 40, 160 particles, 2 classes,
2 iterations): each run takes about 30 s on 2 cores.  The deciding Schedule is run twice, once
selecting a class and once stopping, and twice on the example project's finished Class3D (by
completeness, by a region), where it must select class 1, the one with the variable domain.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

from occupy_relion.synthetic import make_particle, render

from .pipeliner import (
    SCHEME_SETTINGS,
    executable_for,
    install_and_set,
    run_to_the_end,
    start_project,
)

pytestmark = pytest.mark.relion

BOX = 40
PIXEL_SIZE = 3.0
PER_MAP = 80
SCHEDULER_TIMEOUT = 400  # seconds; a run takes about 30 s

needs_relion = pytest.mark.skipif(
    any(shutil.which(program) is None for program in ("relion_refine", "relion_project", "relion_scheduler")),
    reason="needs RELION 3.1 programs (relion_refine, relion_project, relion_scheduler) on PATH",
)


def _write_map(path: Path, volume: np.ndarray) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(volume.astype(np.float32))
        mrc.voxel_size = PIXEL_SIZE


def make_tiny_project(project: Path) -> None:
    """Two maps (third domain present / absent), noisy projections, particles STAR, reference, empty pipeline."""
    simulation = project / "Simulation"
    simulation.mkdir(parents=True)
    maps = []
    for name, occupancy in (("present", 1.0), ("absent", 0.0)):
        volume = render(make_particle((1.0, 1.0, occupancy), seed=3), (BOX, BOX, BOX), PIXEL_SIZE, blur=2.0)
        _write_map(simulation / f"{name}.mrc", volume)
        maps.append(volume)
        subprocess.run(["relion_project", "--i", f"Simulation/{name}.mrc", "--o", f"Simulation/{name}",
                        "--nr_uniform", str(PER_MAP), "--angpix", str(PIXEL_SIZE), "--add_noise",
                        "--white_noise", "0.05"], cwd=project, check=True, capture_output=True)
    _write_map(simulation / "reference.mrc", np.mean(maps, axis=0))
    rows = [f"{i:06d}@Simulation/{name}.mrcs Simulation/{name}.mrc 1"
            for name in ("present", "absent") for i in range(1, PER_MAP + 1)]
    (simulation / "particles.star").write_text(
        "\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n"
        "_rlnVoltage #3\n_rlnSphericalAberration #4\n_rlnAmplitudeContrast #5\n_rlnImagePixelSize #6\n"
        f"_rlnImageSize #7\n_rlnImageDimensionality #8\n1 optics1 300 2.7 0.1 {PIXEL_SIZE} {BOX} 2\n\n\n"
        "# version 30001\n\ndata_particles\n\nloop_\n_rlnImageName #1\n_rlnMicrographName #2\n"
        "_rlnOpticsGroup #3\n" + "\n".join(rows) + "\n")
    start_project(project, "3.1")


#: tiny-run values for the shipped Schedules' variables
SETTINGS = {"particles": "Simulation/particles.star", "reference": "Simulation/reference.mrc", **SCHEME_SETTINGS}


@pytest.fixture(scope="module")
def simulation(tmp_path_factory) -> Path:
    """The tiny project's simulated particles, made once for the module."""
    project = tmp_path_factory.mktemp("simulation")
    make_tiny_project(project)
    return project


def run_schedule(simulation: Path, tmp_path: Path, schedule: str, **extra: str) -> tuple[Path, str, dict]:
    """A fresh project with the simulation, the Schedule installed, variables set and run to the end.

    Returns (project, the scheduler's output, default_pipeline.star tables).
    """
    project = tmp_path / "project"
    shutil.copytree(simulation, project)
    install_and_set(project, "3.1", schedule, executable_for(tmp_path), {**SETTINGS, **extra})
    log = run_to_the_end(project, "3.1", schedule, timeout=SCHEDULER_TIMEOUT)
    return project, log, starfile.read(project / "default_pipeline.star", always_dict=True)


def processes_of(pipeline: dict) -> dict[str, int]:
    table = pipeline["pipeline_processes"]
    return dict(zip(table["rlnPipeLineProcessName"], table["rlnPipeLineProcessStatus"]))


@needs_relion
def test_schedule_runs_class3d_then_our_job_under_relion_31(simulation, tmp_path):
    project, log, pipeline = run_schedule(simulation, tmp_path, "occupy_class3d")
    assert processes_of(pipeline) == {"Class3D/job001/": 2, "External/job002/": 2}, log  # 2 = Succeeded

    job = project / "External" / "job002"
    assert (job / "RELION_JOB_EXIT_SUCCESS").is_file(), (job / "run.err").read_text()
    note = (job / "note.txt").read_text()
    assert "--in_parts Class3D/job001/run_it002_data.star" in note  # the last iteration, found by the operators
    assert "--amplify inf" in note

    nodes = pipeline["pipeline_nodes"]
    ours = nodes[nodes["rlnPipeLineNodeName"].str.startswith("External/job002/")]
    names = set(ours["rlnPipeLineNodeName"])
    for number in (1, 2):
        assert f"External/job002/class{number:03d}_equalised.mrc" in names, names
    assert all((project / name).is_file() for name in names)
    edges = pipeline["pipeline_input_edges"]
    assert ((edges["rlnPipeLineEdgeFromNode"] == "Class3D/job001/run_it002_data.star")
            & (edges["rlnPipeLineEdgeProcess"] == "External/job002/")).any()
    summary = starfile.read(job / "occupancy.star", always_dict=True)
    assert sorted(summary["occupancy_classes"]["rlnClassNumber"]) == [1, 2]


def majority_state(data_star: Path) -> dict[int, tuple[str, float]]:
    """Per class of a data.star: the simulated map most of its particles come from, and their share."""
    particles = starfile.read(data_star, always_dict=True)["particles"]
    state = particles["rlnImageName"].str.extract(r"@Simulation/(\w+)\.mrcs", expand=False)
    counts = particles.groupby([particles["rlnClassNumber"], state]).size().unstack(fill_value=0)
    return {int(c): (str(counts.loc[c].idxmax()), float(counts.loc[c].max() / counts.loc[c].sum()))
            for c in counts.index}


@needs_relion
def test_deciding_schedule_selects_the_most_complete_class(simulation, tmp_path):
    project, log, pipeline = run_schedule(simulation, tmp_path, "occupy_select", min_occupancy="0.05",
                                          min_fraction="0")
    assert processes_of(pipeline) == {"Class3D/job001/": 2, "External/job002/": 2, "Select/job003/": 2}, log
    classes = starfile.read(project / "External/job002/occupancy.star", always_dict=True)["occupancy_classes"]
    best = classes.loc[classes["rlnAverageValue"].idxmax()]
    assert f"READ_class => {int(best['rlnClassNumber'])}" in log
    selected = starfile.read(project / "Select/job003/particles.star", always_dict=True)["particles"]
    assert set(selected["rlnClassNumber"]) == {int(best["rlnClassNumber"])}
    assert len(selected) > 0
    # (two iterations do not separate the two maps here, ~51 % each: which class has the domain is
    # asserted on the example project below)


@needs_relion
def test_deciding_schedule_stops_when_no_class_is_complete_enough(simulation, tmp_path):
    project, log, pipeline = run_schedule(simulation, tmp_path, "occupy_select", min_occupancy="1.5")
    assert processes_of(pipeline) == {"Class3D/job001/": 2, "External/job002/": 2}, log
    assert "CHECK_occupancy => False" in log and "DECIDE => False" in log
    assert not (project / "Select").exists()


EXAMPLE = Path(__file__).resolve().parents[1] / "example_project"


def _example_after_its_classification(tmp_path: Path, **settings: str) -> tuple[Path, str, dict]:
    """occupy_select on the example project's finished Class3D: the Schedule starts at FIND_iterations with
    ``class3d_output`` pointing at Class3D/job003/ (how a user runs it after a classification of their own)."""
    project = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("External", "Simulation", "*.mrcs", "Schedules"))
    install_and_set(project, "3.1", "occupy_select", executable_for(tmp_path),
                    {"class3d_output": "Class3D/job003/run_it*_data.star", "threads": "2", **settings})
    done = subprocess.run(["relion_scheduler", "--schedule", "occupy_select", "--set_current_node",
                           "FIND_iterations"], cwd=project, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    log = run_to_the_end(project, "3.1", "occupy_select", timeout=SCHEDULER_TIMEOUT)
    return project, log, starfile.read(project / "default_pipeline.star", always_dict=True)


@needs_relion
def test_deciding_schedule_selects_the_present_class_of_the_example_project(tmp_path):
    """Class 1 has the variable domain (present), 2 lacks it, 3 has it at half: completeness picks class 1."""
    project, log, pipeline = _example_after_its_classification(tmp_path)
    statuses = processes_of(pipeline)
    assert statuses["External/job004/"] == 2 and statuses["Select/job005/"] == 2, log
    assert "READ_class => 1" in log and "DECIDE => True" in log
    assert "--in_parts Class3D/job003/run_it025_data.star" in (project / "External/job004/note.txt").read_text()
    selected = starfile.read(project / "Select/job005/particles.star", always_dict=True)["particles"]
    assert set(selected["rlnClassNumber"]) == {1} and len(selected) > 0
    assert majority_state(project / "Class3D/job003/run_it025_data.star")[1][0] == "present"


@needs_relion
def test_deciding_schedule_selects_by_a_region_of_the_example_project(tmp_path):
    """select_table occupancy_region001: the class with the most of region 1 (the variable domain)."""
    project, log, pipeline = _example_after_its_classification(tmp_path, select_table="occupancy_region001")
    assert processes_of(pipeline)["Select/job005/"] == 2, log
    assert "occupancy_region001,rlnAverageValue" in log and "READ_class => 1" in log
    selected = starfile.read(project / "Select/job005/particles.star", always_dict=True)["particles"]
    assert set(selected["rlnClassNumber"]) == {1}

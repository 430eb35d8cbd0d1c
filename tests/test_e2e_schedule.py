"""End to end under real RELION 3.1: install our Schedule into a tiny project and run ``relion_scheduler``.

The Schedule must create a Class3D job and our External job on its last iteration, and RELION must
register our outputs in default_pipeline.star.  Kept small (box 40, 160 particles, 2 classes,
2 iterations): each run takes about 30 s on 2 cores.  The deciding Schedule is run twice, once
selecting a class and once stopping.
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


@needs_relion
def test_deciding_schedule_selects_the_most_uniform_class(simulation, tmp_path):
    project, log, pipeline = run_schedule(simulation, tmp_path, "occupy_select", min_scale="0.05", min_fraction="0")
    assert processes_of(pipeline) == {"Class3D/job001/": 2, "External/job002/": 2, "Select/job003/": 2}, log
    classes = starfile.read(project / "External/job002/occupancy.star", always_dict=True)["occupancy_classes"]
    best = classes.loc[classes["rlnAverageValue"].idxmax()]
    assert f"READ_class => {int(best['rlnClassNumber'])}" in log
    selected = starfile.read(project / "Select/job003/particles.star", always_dict=True)["particles"]
    assert set(selected["rlnClassNumber"]) == {int(best["rlnClassNumber"])}
    assert len(selected) > 0


@needs_relion
def test_deciding_schedule_stops_when_no_class_is_uniform_enough(simulation, tmp_path):
    project, log, pipeline = run_schedule(simulation, tmp_path, "occupy_select", min_scale="1.5")
    assert processes_of(pipeline) == {"Class3D/job001/": 2, "External/job002/": 2}, log
    assert "CHECK_scale => False" in log and "DECIDE => False" in log
    assert not (project / "Select").exists()

"""End to end with Debian's real RELION 3.1.3: our job run by relion_pipeliner, as from the GUI.

Each test copies a project to tmp_path, adds an External job with ``relion_pipeliner --addJob
External --addJobOptions "..."`` and runs it with ``--RunJobs``.  RELION decides Succeeded / Failed /
Aborted from our marker files and registers our nodes from RELION_OUTPUT_NODES.star.  A tiny Class3D
is made once per session by relion_refine itself (box 40, 300 particles, K 2, 3 iterations).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import starfile

from .conftest import SHARED_RELION, copy_tree, relion_available, slow_job_executable
from .pipeliner import (
    add_external,
    registered_nodes,
    run,
    run_job,
    run_job_and_abort,
    start_project,
    status,
    synthetic_particles,
)

pytestmark = pytest.mark.relion


@pytest.fixture
def project31(tmp_path) -> Path:
    source = SHARED_RELION / "relion31_project"
    if not source.exists():
        pytest.skip("shared RELION project not found")
    return copy_tree(source, tmp_path / "project")


def test_pipeliner_runs_our_job_to_success(project31, occupy_exe):
    job = add_external(project31, occupy_exe, in_part="Class3D/job003/run_it010_data.star",
                       param1_label="joint", param1_value="", param2_label="attenuate", param2_value="2",
                       nr_threads="2")
    ran = run_job(project31, job)
    assert status(project31, job) == "Succeeded", (project31 / job / "run.err").read_text()
    # RELION 3.1 reads only the integer type: a label column would make it warn "unknown label" each run
    assert "unknown label" not in ran.stdout + ran.stderr, ran.stderr
    nodes = registered_nodes(project31, job)
    for number in (1, 2):
        assert nodes[f"{job}class{number:03d}_equalised.mrc"] == 6
        assert nodes[f"{job}class{number:03d}_attenuated.mrc"] == 6
        assert nodes[f"{job}class{number:03d}_scale.mrc"] == 12
    assert (project31 / job / "logfile.pdf").stat().st_size > 10_000
    assert nodes[f"{job}logfile.pdf"] == 13  # the GUI's Display opens it
    run_out = (project31 / job / "run.out").read_text()
    assert "input: --in_parts Class3D/job003/run_it010_data.star" in run_out
    assert "RELION version: 3.1 (from default_pipeline.star)" in run_out
    assert "class 002 done in" in run_out
    # RELION programs read our outputs
    stats = run(["relion_image_handler", "--stats", "--i", f"{job}class001_equalised.mrc"], project31).stdout
    assert "64 x 64 x 64" in stats and "angpix = 3.5" in stats
    table = run(["relion_star_printtable", f"{job}occupancy.star", "data_occupancy_classes", "rlnClassNumber",
                  "rlnAverageValue", "rlnReferenceImage"], project31).stdout.split()
    assert table[0] == "1" and table[2] == f"{job}class001_equalised.mrc" and 0 < float(table[1]) <= 1


def test_bad_input_ends_failed(project31, occupy_exe):
    """An input that exists but is wrong: a data.star with no model.star beside it."""
    shutil.copy(project31 / "Class3D/job003/run_it010_data.star", project31 / "Class3D/job003/run_it004_data.star")
    job = add_external(project31, occupy_exe, in_part="Class3D/job003/run_it004_data.star", nr_threads="1")
    run_job(project31, job)
    assert status(project31, job) == "Failed"
    errors = (project31 / job / "run.err").read_text().strip().splitlines()
    assert errors == [("ERROR: Class3D/job003/run_it004_data.star: no model.star beside it "
                       "(Class3D/job003/run_it004_model.star not found)")]
    assert not (project31 / job / "RELION_OUTPUT_NODES.star").exists()
    assert registered_nodes(project31, job) == {}


def test_abort_ends_aborted(project31, tmp_path):
    slow = str(slow_job_executable(tmp_path / "slow_occupy"))  # its abort checks wait: time to press Abort
    job = add_external(project31, slow, in_part="Class3D/job003/run_it010_data.star", nr_threads="1")
    run_job_and_abort(project31, job, when="first class")
    assert status(project31, job) == "Aborted"
    assert (project31 / job / "RELION_JOB_EXIT_ABORTED").exists()
    assert not (project31 / job / "RELION_JOB_ABORT_NOW").exists()
    assert not (project31 / job / "class002_equalised.mrc").exists()


def test_abort_pressed_while_the_job_starts_ends_aborted(project31, tmp_path):
    """RELION removes old markers before the launch; a request right after it must not be lost."""
    slow = str(slow_job_executable(tmp_path / "slow_occupy"))  # its abort checks wait: time to press Abort
    job = add_external(project31, slow, in_part="Class3D/job003/run_it010_data.star", nr_threads="1")
    run_job_and_abort(project31, job, when="launch")
    assert status(project31, job) == "Aborted", (project31 / job / "run.out").read_text()
    assert not (project31 / job / "RELION_JOB_EXIT_SUCCESS").exists()
    assert registered_nodes(project31, job) == {}


# ------------------------------------------------------------------------------------------------
# a real, tiny Class3D made by relion_refine


@pytest.fixture(scope="session")
def tiny_class3d(tmp_path_factory) -> Path:
    """A project holding Class3D/job002/ from a real relion_refine run (made once per session)."""
    if not relion_available():
        pytest.skip("RELION programs not on PATH")
    project = tmp_path_factory.mktemp("class3d") / "project"
    project.mkdir()
    synthetic_particles(project)
    (project / "Class3D" / "job002").mkdir(parents=True)
    run(["relion_refine", "--o", "Class3D/job002/run", "--i", "Synthetic/particles.star", "--ref",
          "Synthetic/reference.mrc", "--ini_high", "40", "--dont_combine_weights_via_disc", "--pool", "30",
          "--pad", "1", "--skip_gridding", "--iter", "3", "--tau2_fudge", "4", "--particle_diameter", "120",
          "--K", "2", "--flatten_solvent", "--zero_mask", "--oversampling", "0", "--healpix_order", "0",
          "--offset_range", "2", "--offset_step", "2", "--sym", "C1", "--norm", "--scale", "--j", "2"],
         project, timeout=900)
    start_project(project, "3.1", counter=3)
    return project


def test_our_job_on_a_fresh_relion_class3d(tiny_class3d, tmp_path, occupy_exe):
    project = tmp_path / "project"
    shutil.copytree(tiny_class3d, project)
    job = add_external(project, occupy_exe, in_part="Class3D/job002/run_it003_data.star",
                       param1_label="exclude-solvent", param1_value="yes", nr_threads="2")
    run_job(project, job)
    assert status(project, job) == "Succeeded", (project / job / "run.err").read_text()
    nodes = registered_nodes(project, job)
    assert {f"{job}class001_equalised.mrc", f"{job}class002_equalised.mrc"} <= set(nodes)
    general = starfile.read(project / job / "occupancy.star", always_dict=True)
    classes = general["occupancy_classes"]
    assert list(classes["rlnClassNumber"]) == [1, 2]
    assert general["occupancy_general"]["rlnModelStarFile"] == "Class3D/job002/run_it003_model.star"
    stats = run(["relion_image_handler", "--stats", "--i", f"{job}class002_equalised.mrc"], project).stdout
    assert "40 x 40 x 40" in stats

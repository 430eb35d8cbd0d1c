"""End to end with Debian's real RELION 3.1.3: our job run by relion_pipeliner, as from the GUI.

Each test copies a project to tmp_path, adds an External job with ``relion_pipeliner --addJob
External --addJobOptions "..."`` and runs it with ``--RunJobs``.  RELION decides Succeeded / Failed /
Aborted from our marker files and registers our nodes from RELION_OUTPUT_NODES.star.  A tiny Class3D
is made once per session by relion_refine itself (box 40, 300 particles, K 2, 3 iterations).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import starfile

from .conftest import SHARED_RELION, copy_tree, relion_available, slow_job_executable, write_mrc

pytestmark = pytest.mark.relion

SUCCEEDED, FAILED, ABORTED = 2, 3, 4  # RELION 3.1 process status integers

MINIMAL_PIPELINE = """
# version 30001

data_pipeline_general

_rlnPipeLineJobCounter                       {counter}

"""


@pytest.fixture(scope="session")
def occupy_exe() -> str:
    """The installed console script, by absolute path (RELION runs fn_exe through /bin/sh)."""
    exe = shutil.which("occupy_relion")
    if exe is None:
        pytest.skip("the occupy_relion console script is not installed (pip install .)")
    return str(Path(exe).absolute())


def _run(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def _pipeline(project: Path) -> dict:
    return starfile.read(project / "default_pipeline.star", always_dict=True)


def add_external(project: Path, exe: str, **options: str) -> str:
    """Add an External job to the project's pipeline; return its name (External/jobNNN/)."""
    counter = int(_pipeline(project)["pipeline_general"]["rlnPipeLineJobCounter"])
    text = ";".join(f"{key} == {value}" for key, value in {"fn_exe": exe, **options}.items())
    _run(["relion_pipeliner", "--addJob", "External", "--addJobOptions", text], project)
    job = f"External/job{counter:03d}/"
    assert status(project, job) == 1  # Scheduled
    return job


def run_jobs(project: Path, job: str, env: dict | None = None) -> None:
    _run(["relion_pipeliner", "--RunJobs", job, "--sec_wait_after", "1"], project, env=env)


def status(project: Path, job: str) -> int:
    processes = _pipeline(project)["pipeline_processes"]
    row = processes[processes["rlnPipeLineProcessName"] == job]
    assert len(row) == 1, f"{job} not in the pipeline"
    return int(row["rlnPipeLineProcessStatus"].iloc[0])


def registered_nodes(project: Path, job: str) -> dict[str, int]:
    nodes = _pipeline(project)["pipeline_nodes"]
    mine = nodes[nodes["rlnPipeLineNodeName"].str.startswith(job)]
    return dict(zip(mine["rlnPipeLineNodeName"], mine["rlnPipeLineNodeType"].astype(int)))


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
    run_jobs(project31, job)
    assert status(project31, job) == SUCCEEDED, (project31 / job / "run.err").read_text()
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
    stats = _run(["relion_image_handler", "--stats", "--i", f"{job}class001_equalised.mrc"], project31).stdout
    assert "64 x 64 x 64" in stats and "angpix = 3.5" in stats
    table = _run(["relion_star_printtable", f"{job}occupancy.star", "data_occupancy_classes", "rlnClassNumber",
                  "rlnAverageValue", "rlnReferenceImage"], project31).stdout.split()
    assert table[0] == "1" and table[2] == f"{job}class001_equalised.mrc" and 0 < float(table[1]) <= 1


def test_bad_input_ends_failed(project31, occupy_exe):
    """An input that exists but is wrong: a data.star with no model.star beside it."""
    shutil.copy(project31 / "Class3D/job003/run_it010_data.star", project31 / "Class3D/job003/run_it004_data.star")
    job = add_external(project31, occupy_exe, in_part="Class3D/job003/run_it004_data.star", nr_threads="1")
    run_jobs(project31, job)
    assert status(project31, job) == FAILED
    errors = (project31 / job / "run.err").read_text().strip().splitlines()
    assert errors == ["ERROR: Class3D/job003/run_it004_data.star: no model.star beside it "
                      "(Class3D/job003/run_it004_model.star not found)"]
    assert not (project31 / job / "RELION_OUTPUT_NODES.star").exists()
    assert registered_nodes(project31, job) == {}


def test_abort_ends_aborted(project31):
    slow = slow_job_executable(project31 / "slow_occupy")  # every abort check waits: time to press Abort
    job = add_external(project31, str(slow), in_part="Class3D/job003/run_it010_data.star", nr_threads="1")
    pipeliner = subprocess.Popen(["relion_pipeliner", "--RunJobs", job, "--sec_wait_after", "1"], cwd=project31,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        run_out = project31 / job / "run.out"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if run_out.exists() and "class 001:" in run_out.read_text():
                break
            time.sleep(0.2)
        else:
            pytest.fail("the job did not start")
        (project31 / job / "RELION_JOB_ABORT_NOW").write_text("")  # what the GUI's Abort button does
        assert pipeliner.wait(timeout=180) == 0
    finally:
        if pipeliner.poll() is None:
            pipeliner.kill()
    assert status(project31, job) == ABORTED
    assert (project31 / job / "RELION_JOB_EXIT_ABORTED").exists()
    assert not (project31 / job / "RELION_JOB_ABORT_NOW").exists()
    assert not (project31 / job / "class002_equalised.mrc").exists()


# ------------------------------------------------------------------------------------------------
# a real, tiny Class3D made by relion_refine


def _synthetic_particles(project: Path, box: int = 40, pixel_size: float = 3.5, per_class: int = 150) -> None:
    """Two particle sets (all domains / one domain missing) projected by relion_project, with noise."""
    from occupy_relion.synthetic import make_particle, render

    folder = project / "Synthetic"
    folder.mkdir(parents=True)
    sets = []
    optics = None
    for name, occupancy in (("A", (1.0, 1.0, 1.0)), ("B", (1.0, 1.0, 0.0))):
        particle = make_particle(occupancy, radius=12, spacing=26, seed=3)
        volume = render(particle, (box,) * 3, pixel_size) * 13  # projections of sd ≈ 1
        write_mrc(folder / f"map{name}.mrc", volume, pixel_size)
        _run(["relion_project", "--i", f"Synthetic/map{name}.mrc", "--o", f"Synthetic/proj{name}", "--nr_uniform",
              str(per_class), "--add_noise", "--white_noise", "3", "--angpix", str(pixel_size)], project)
        star = starfile.read(folder / f"proj{name}.star", always_dict=True)
        sets.append(star["particles"])
        optics = star["optics"]
    particles = pd.concat(sets, ignore_index=True)
    particles["rlnMicrographName"] = "Synthetic/mic001.mrc"
    starfile.write({"optics": optics, "particles": particles}, folder / "particles.star")
    shutil.copy(folder / "mapA.mrc", folder / "reference.mrc")


@pytest.fixture(scope="session")
def tiny_class3d(tmp_path_factory) -> Path:
    """A project holding Class3D/job002/ from a real relion_refine run (made once per session)."""
    if not relion_available():
        pytest.skip("RELION programs not on PATH")
    project = tmp_path_factory.mktemp("class3d") / "project"
    project.mkdir()
    _synthetic_particles(project)
    (project / "Class3D" / "job002").mkdir(parents=True)
    _run(["relion_refine", "--o", "Class3D/job002/run", "--i", "Synthetic/particles.star", "--ref",
          "Synthetic/reference.mrc", "--ini_high", "40", "--dont_combine_weights_via_disc", "--pool", "30",
          "--pad", "1", "--skip_gridding", "--iter", "3", "--tau2_fudge", "4", "--particle_diameter", "120",
          "--K", "2", "--flatten_solvent", "--zero_mask", "--oversampling", "0", "--healpix_order", "0",
          "--offset_range", "2", "--offset_step", "2", "--sym", "C1", "--norm", "--scale", "--j", "2"],
         project, timeout=900)
    (project / "default_pipeline.star").write_text(MINIMAL_PIPELINE.format(counter=3))
    return project


def test_our_job_on_a_fresh_relion_class3d(tiny_class3d, tmp_path, occupy_exe):
    project = tmp_path / "project"
    shutil.copytree(tiny_class3d, project)
    job = add_external(project, occupy_exe, in_part="Class3D/job002/run_it003_data.star",
                       param1_label="exclude-solvent", param1_value="yes", nr_threads="2")
    run_jobs(project, job)
    assert status(project, job) == SUCCEEDED, (project / job / "run.err").read_text()
    nodes = registered_nodes(project, job)
    assert {f"{job}class001_equalised.mrc", f"{job}class002_equalised.mrc"} <= set(nodes)
    general = starfile.read(project / job / "occupancy.star", always_dict=True)
    classes = general["occupancy_classes"]
    assert list(classes["rlnClassNumber"]) == [1, 2]
    assert general["occupancy_general"]["rlnModelStarFile"] == "Class3D/job002/run_it003_model.star"
    stats = _run(["relion_image_handler", "--stats", "--i", f"{job}class002_equalised.mrc"], project).stdout
    assert "40 x 40 x 40" in stats

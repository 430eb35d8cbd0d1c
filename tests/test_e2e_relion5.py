"""End to end with real RELION 5.0.1 (``shared/relion5/bin``): pipeliner, schemer, abort and continue.

A RELION 5.0 project (``# version 50001``) is made once per session: synthetic particles projected by
RELION 5's relion_project, then a real Class3D run by ``relion_pipeliner`` 5.0 (box 40, 300
particles, K 2, 4 iterations, about 10 s on 2 cores).  Every test works on a copy.  Our job is added
with ``relion_pipeliner --addJob External`` and run with ``--RunJobs``, as the GUI would; RELION 5
decides Succeeded / Failed / Aborted from our markers and registers our nodes from
RELION_OUTPUT_NODES.star.  RELION 5 is first on PATH only in the environment given to these
commands (:func:`tests.conftest.relion5_env`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

from occupy_relion.relion import markers, schemes
from occupy_relion.synthetic import make_particle

from .conftest import RELION5_BIN, relion5_available, relion5_env, slow_job_executable
from .pipeliner import (
    SCHEME_SETTINGS,
    add_external,
    add_job,
    executable_for,
    install_and_set,
    pipeline,
    processes,
    registered_nodes,
    run,
    run_job,
    run_job_and_abort,
    run_to_the_end,
    schemer,
    source_map,
    start_project,
    status,
    synthetic_particles,
    wait_for,
)

pytestmark = pytest.mark.relion5

REPOSITORY = Path(__file__).resolve().parents[1]

CLASS3D = "Class3D/job001/"
ITERATIONS = 4
DATA = f"{CLASS3D}run_it{ITERATIONS:03d}_data.star"
BOX, PIXEL_SIZE = 40, 3.5
#: the Class3D job of the session's project, as the GUI's Class3D form would set it (one thread: with two,
#: RELION's sums come in a different order from run to run and the tiny classification sometimes splits
#: the particle sets differently; with one and --random_seed it is the same on every run)
CLASS3D_OPTIONS = {
    "fn_img": "Synthetic/particles.star", "fn_ref": "Synthetic/reference.mrc", "ref_correct_greyscale": "Yes",
    "ini_high": "40", "do_ctf_correction": "No", "nr_classes": "2", "nr_iter": str(ITERATIONS),
    "particle_diameter": "120", "sampling": "30 degrees", "offset_range": "2", "offset_step": "2",
    "do_combine_thru_disc": "No", "do_pad1": "Yes", "nr_threads": "1", "other_args": "--random_seed 1",
}
#: tiny-run values for the shipped Schemes under RELION 5 (the session's particles, coarse sampling)
SETTINGS = {**SCHEME_SETTINGS, "particles": "Synthetic/particles.star", "reference": "Synthetic/reference.mrc",
            "particle_diameter": "120", "ini_high": "40", "sampling": "30 degrees"}
#: occupy_focus starts from a finished Class3D with an optimiser file and takes other variables: it runs
#: under real RELION 5.0 in test_e2e_focus.py
SHIPPED_SCHEMES = [name for name, (scheme, _) in schemes.available(schemes.shipped_root()).items()
                   if scheme and name not in (schemes.GUI_JOB, "occupy_focus")]


@pytest.fixture(scope="session")
def env5() -> dict[str, str]:
    """The environment with RELION 5.0's bin/ first on PATH (checked: relion_refine there is 5.0)."""
    if not relion5_available():
        pytest.skip("RELION 5.0 programs not runnable")
    env = relion5_env()
    assert shutil.which("relion_pipeliner", path=env["PATH"]) == str(RELION5_BIN / "relion_pipeliner")
    return env


@pytest.fixture(scope="session")
def class3d_50(tmp_path_factory, env5) -> Path:
    """A RELION 5.0 project holding a real Class3D/job001/ run by relion_pipeliner 5.0 (made once)."""
    project = start_project(tmp_path_factory.mktemp("relion5") / "project", "5.0")
    synthetic_particles(project, env5, box=BOX, pixel_size=PIXEL_SIZE, per_class=150, noise=1.0, seed=11)
    job = add_job(project, "Class3D", CLASS3D_OPTIONS, env5)
    assert job == CLASS3D
    run_job(project, job, env5, timeout=900)
    assert status(project, job) == "Succeeded", (project / job / "run.err").read_text()[-2000:]
    return project


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


@pytest.fixture
def project(class3d_50, tmp_path) -> Path:
    """A fresh copy of the session's RELION 5.0 project."""
    return copy_project(class3d_50, tmp_path / "project")


@pytest.fixture(scope="module")
def ran_job(class3d_50, tmp_path_factory, env5, occupy_exe) -> tuple[Path, str]:
    """(project, job): our job run once by relion_pipeliner 5.0 on the Class3D's last iteration."""
    project = copy_project(class3d_50, tmp_path_factory.mktemp("ran") / "project")
    job = add_external(project, occupy_exe, env5, in_part=DATA, param1_label="attenuate", param1_value="2",
                       nr_threads="2")
    ran = run_job(project, job, env5)
    assert "unknown label" not in ran.stdout + ran.stderr
    return project, job


def test_the_project_is_relion_50s(class3d_50, env5):
    """RELION 5.0.1 wrote the pipeline, and its Class3D told the two particle sets apart."""
    version = run(["relion_refine", "--version"], class3d_50, env5).stdout
    assert "RELION version: 5.0.1" in version
    first = (class3d_50 / "default_pipeline.star").read_text().split("data_")[0]
    assert "# version 50001" in first
    particles = starfile.read(class3d_50 / DATA, always_dict=True)["particles"]
    counts = particles.groupby([source_map(particles), particles["rlnClassNumber"]]).size().unstack(fill_value=0)
    assert counts.max(axis=1).sum() / len(particles) > 0.9 and len(set(counts.idxmax(axis=1))) == 2


def test_our_job_succeeds_under_the_50_pipeliner(ran_job):
    project, job = ran_job
    assert status(project, job) == "Succeeded", (project / job / "run.err").read_text()
    ended = {name for name in markers.EXIT_MARKERS if (project / job / name).exists()}
    assert ended == {markers.SUCCESS}
    run_out = (project / job / "run.out").read_text()
    assert f"input: --in_parts {DATA}" in run_out and "RELION version: 5.0 (from default_pipeline.star)" in run_out
    assert "ERROR" not in (project / job / "run.err").read_text()


def test_every_output_node_is_registered_with_its_50_label(ran_job, env5):
    """Data-driven: each row of our RELION_OUTPUT_NODES.star is in the pipeline, with its label, under .Nodes/."""
    project, job = ran_job
    ours = starfile.read(project / job / markers.OUTPUT_NODES)
    # the layout RELION 5.0's own programs write (relion_star_handler --split writes such a file)
    (project / "Split").mkdir(exist_ok=True)
    run(["relion_star_handler", "--i", DATA, "--o", "Split/particles.star", "--split", "--nr_split", "2"],
        project, env5)
    theirs = starfile.read(project / "Split" / markers.OUTPUT_NODES)
    assert list(ours.columns) == list(theirs.columns) == ["rlnPipeLineNodeName", "rlnPipeLineNodeTypeLabel"]

    registered = registered_nodes(project, job)
    assert registered == dict(zip(ours["rlnPipeLineNodeName"], ours["rlnPipeLineNodeTypeLabel"]))
    edges = pipeline(project)["pipeline_output_edges"]
    produced = set(edges.loc[edges["rlnPipeLineEdgeProcess"] == job, "rlnPipeLineEdgeToNode"])
    for name, label in registered.items():
        assert (project / name).is_file(), name
        assert (project / ".Nodes" / label.split(".")[0] / name).is_file(), (name, label)  # the GUI's browsers
        assert name in produced, name
    assert {label.split(".")[0] for label in registered.values()} >= {"DensityMap", "Image3D", "LogFile",
                                                                       "ProcessData"}
    for number in (1, 2):
        for kind, label in (("equalised", "DensityMap.mrc"), ("attenuated", "DensityMap.mrc"),
                            ("scale", "Image3D.mrc.localresmap")):
            assert registered[f"{job}class{number:03d}_{kind}.mrc"] == label
    assert registered[f"{job}logfile.pdf"] == "LogFile.pdf.relion"
    assert registered[f"{job}occupancy.star"] == "ProcessData.star.occupy"


def test_scale_shows_the_missing_domain(ran_job):
    """Known truth: the class of the particles without the third domain reads a lower scale there."""
    project, job = ran_job
    particles = starfile.read(project / DATA, always_dict=True)["particles"]
    majority = particles.groupby("rlnClassNumber")["rlnImageName"].agg(
        lambda names: source_map(particles.loc[names.index]).value_counts().idxmax())
    assert sorted(majority) == ["A", "B"]
    centres = make_particle((1.0, 1.0, 1.0), radius=12, spacing=26, seed=3).centres
    median = {}
    for number, source in majority.items():
        scale = mrcfile.read(project / job / f"class{number:03d}_scale.mrc")
        x, y, z = np.round(centres[2] / PIXEL_SIZE + BOX // 2).astype(int)
        median[source] = float(np.median(scale[z - 1:z + 2, y - 1:y + 2, x - 1:x + 2]))
    assert median["A"] > 0.8 and median["B"] < median["A"] - 0.2, median


def test_relion50_programs_take_our_outputs(ran_job, env5):
    """MaskCreate 5.0 on an equalised map, and a Class3D 5.0 started from one, run through the pipeliner."""
    project, job = ran_job
    equalised = f"{job}class001_equalised.mrc"
    assert "40 x 40 x 40" in run(["relion_image_handler", "--stats", "--i", equalised], project, env5).stdout
    threshold = 0.3 * float(mrcfile.read(project / equalised).max())
    mask_job = add_job(project, "MaskCreate", {"fn_in": equalised, "lowpass_filter": "15",
                                               "inimask_threshold": f"{threshold:.4f}", "extend_inimask": "2",
                                               "width_mask_edge": "3", "nr_threads": "2"}, env5)
    run_job(project, mask_job, env5)
    assert status(project, mask_job) == "Succeeded", (project / mask_job / "run.err").read_text()
    mask = mrcfile.read(project / mask_job / "mask.mrc")
    assert mask.min() >= -1e-6 and mask.max() <= 1 + 1e-6 and 0.01 < (mask > 0.5).mean() < 0.6
    assert registered_nodes(project, mask_job)[f"{mask_job}mask.mrc"].startswith("Mask3D")

    refine_job = add_job(project, "Class3D", {**CLASS3D_OPTIONS, "fn_img": DATA, "fn_ref": equalised,
                                              "nr_classes": "1", "nr_iter": "1"}, env5)
    run_job(project, refine_job, env5, timeout=600)
    assert status(project, refine_job) == "Succeeded", (project / refine_job / "run.err").read_text()[-2000:]
    edges = pipeline(project)["pipeline_input_edges"]
    for consumer in (mask_job, refine_job):
        taken = set(edges.loc[edges["rlnPipeLineEdgeProcess"] == consumer, "rlnPipeLineEdgeFromNode"])
        assert equalised in taken, consumer
    result = mrcfile.read(project / refine_job / "run_it001_class001.mrc")
    assert np.corrcoef(result.ravel(), mrcfile.read(project / equalised).ravel())[0, 1] > 0.5


def test_the_31_example_project_runs_under_relion50(tmp_path, env5, occupy_exe):
    """example_project/ (made by RELION 3.1.3) opens in 5.0: its pipeliner upgrades it, our job gets 5.0 labels."""
    project = tmp_path / "example_project"
    shutil.copytree(REPOSITORY / "example_project", project, ignore=shutil.ignore_patterns("External", "Simulation"))
    assert "_rlnPipeLineProcessType " in (project / "default_pipeline.star").read_text()  # 3.1's integers
    job = add_external(project, occupy_exe, env5, in_part="Class3D/job003/run_it025_data.star", nr_threads="2")
    assert "# version 50001" in (project / "default_pipeline.star").read_text()
    run_job(project, job, env5)
    assert status(project, job) == "Succeeded", (project / job / "run.err").read_text()
    assert "RELION version: 5.0 (from default_pipeline.star)" in (project / job / "run.out").read_text()
    nodes = registered_nodes(project, job)
    assert [nodes[f"{job}class{n:03d}_equalised.mrc"] for n in (1, 2, 3)] == ["DensityMap.mrc"] * 3


def failing_job(project: Path, exe: str, env: dict) -> str:
    """Our job on an input that exists but is wrong (a data.star with no model.star beside it), run."""
    shutil.copy(project / DATA, project / CLASS3D / "run_it009_data.star")
    job = add_external(project, exe, env, in_part=f"{CLASS3D}run_it009_data.star", nr_threads="1")
    run_job(project, job, env)
    return job


def test_bad_input_ends_failed(project, env5, occupy_exe):
    job = failing_job(project, occupy_exe, env5)
    assert status(project, job) == "Failed"
    assert (project / job / "run.err").read_text().strip().splitlines() == [
        f"ERROR: {CLASS3D}run_it009_data.star: no model.star beside it ({CLASS3D}run_it009_model.star not found)"]
    assert not (project / job / markers.OUTPUT_NODES).exists() and registered_nodes(project, job) == {}


def test_continue_after_a_failure_succeeds(project, env5, occupy_exe):
    job = failing_job(project, occupy_exe, env5)
    assert status(project, job) == "Failed"
    shutil.copy(project / DATA.replace("_data.star", "_model.star"), project / CLASS3D / "run_it009_model.star")
    # the GUI's Continue: the same job re-run with _rlnJobIsContinue 1, in the same directory
    job_star = project / job / "job.star"
    text = job_star.read_text()
    assert "_rlnJobIsContinue                       0" in text
    job_star.write_text(text.replace("_rlnJobIsContinue                       0",
                                     "_rlnJobIsContinue                       1"))
    run_job(project, job, env5)
    assert status(project, job) == "Succeeded", (project / job / "run.err").read_text()
    assert {name for name in markers.EXIT_MARKERS if (project / job / name).exists()} == {markers.SUCCESS}
    assert f"{job}class002_equalised.mrc" in registered_nodes(project, job)
    assert (project / job / "note.txt").read_text().count("Executing new job") == 2


def test_abort_ends_aborted(project, env5, tmp_path):
    slow = str(slow_job_executable(tmp_path / "slow_occupy"))  # its abort checks wait: time to press Abort
    job = add_external(project, slow, env5, in_part=DATA, nr_threads="1")
    run_job_and_abort(project, job, env5, when="first class")
    assert status(project, job) == "Aborted"
    assert (project / job / markers.ABORTED).exists() and not (project / job / markers.SUCCESS).exists()
    assert not (project / job / "class002_equalised.mrc").exists() and registered_nodes(project, job) == {}


def test_abort_pressed_while_the_job_starts_ends_aborted(project, env5, tmp_path):
    """The pipeliner removes old markers before the launch; a request right after it must not be lost."""
    slow = str(slow_job_executable(tmp_path / "slow_occupy"))  # its abort checks wait: time to press Abort
    job = add_external(project, slow, env5, in_part=DATA, nr_threads="1")
    run_job_and_abort(project, job, env5, when="launch")
    assert status(project, job) == "Aborted", (project / job / "run.out").read_text()
    assert not (project / job / markers.SUCCESS).exists() and registered_nodes(project, job) == {}


# ------------------------------------------------------------------------------------------------
# the shipped Schemes under relion_schemer 5.0.1


def new_processes(project: Path, template: Path) -> dict[str, str]:
    before = set(processes(template))
    return {name: state for name, state in processes(project).items() if name not in before}


#: variables that steer a scheme down each of its branches (others run with SETTINGS alone)
BRANCHES = {"occupy_select": {"selects": {"min_occupancy": "0.05", "min_fraction": "0"},
                               "stops": {"min_occupancy": "1.5"}}}
CASES = [pytest.param(name, extra, id=f"{name}-{branch}")
         for name in SHIPPED_SCHEMES for branch, extra in BRANCHES.get(name, {"end": {}}).items()]


@pytest.mark.parametrize(("name", "extra"), CASES)
def test_shipped_scheme_runs_to_its_end(name, extra, project, class3d_50, env5, tmp_path):
    install_and_set(project, "5.0", name, executable_for(tmp_path), {**SETTINGS, **extra}, env5)
    log = run_to_the_end(project, "5.0", name, env5)
    made = new_processes(project, class3d_50)
    assert made and set(made.values()) == {"Succeeded"}, (made, log)
    (external,) = [job for job in made if job.startswith("External/")]
    assert {f"{external}class001_equalised.mrc", f"{external}occupancy.star"} <= set(registered_nodes(project,
                                                                                                       external))
    classes = starfile.read(project / external / "occupancy.star", always_dict=True)["occupancy_classes"]
    selects = [job for job in made if job.startswith("Select/")]
    if name == "occupy_select":
        best = classes.loc[classes["rlnAverageValue"].idxmax()]
        assert f"best_class -> {int(best['rlnClassNumber'])}" in log, log
        if extra.get("min_occupancy") == "1.5":
            assert selects == [] and "class_selected -> False" in log, log
        else:
            (select,) = selects
            chosen = starfile.read(project / select / "particles.star", always_dict=True)["particles"]
            assert set(chosen["rlnClassNumber"]) == {int(best["rlnClassNumber"])} and len(chosen) > 0


def test_schemer_abort_stops_a_running_scheme(project, env5, tmp_path):
    name = "occupy_class3d"
    slow = slow_job_executable(tmp_path / "slow_occupy")  # our job's abort checks wait: it is caught running
    install_and_set(project, "5.0", name, slow, {**SETTINGS, "nr_iter": "1"}, env5)
    env = env5
    running = subprocess.Popen(["relion_schemer", "--scheme", name, "--run", "--pipeline_control",
                                f"Schemes/{name}/"], cwd=project, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        def our_job_runs() -> bool:
            return any("class 001:" in log.read_text() for log in project.glob("External/job*/run.out"))

        wait_for(our_job_runs, "the scheme's External job to start", timeout=300)
        aborted = schemer(project, "5.0", name, "--abort", env=env5)
        assert aborted.returncode == 0 and "RELION_JOB_ABORT_NOW" in aborted.stdout, aborted.stdout
        out, err = running.communicate(timeout=180)
    finally:
        if running.poll() is None:
            running.kill()
            running.communicate()
    assert running.returncode == 0, err
    (job_dir,) = project.glob("External/job*")
    job = f"External/{job_dir.name}/"
    assert f"Stopping scheme due to user abort of job {job}" in out, out
    assert status(project, job) == "Aborted"
    assert (job_dir / markers.ABORTED).exists() and not (job_dir / markers.SUCCESS).exists()
    assert registered_nodes(project, job) == {}
    assert not list(project.glob(".relion_lock*")), "a lock was left behind"
    reset = schemer(project, "5.0", name, "--reset", env=env5)  # the scheme can be used again
    assert reset.returncode == 0, reset.stderr

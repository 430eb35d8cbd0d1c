"""Driving real RELION (3.1.3 or 5.0.1) from the end-to-end tests: projects, jobs, statuses, nodes.

Shared by ``test_e2e_relion.py`` (3.1), ``test_e2e_relion5.py`` (5.0) and ``test_e2e_schedule.py``.
Every function takes the environment to run RELION with (``env``): None for the programs on PATH
(Debian's 3.1.3), or one with RELION 5's ``bin/`` first on PATH.  Jobs are added with
``relion_pipeliner --addJob TYPE --addJobOptions "a == x;b == y"`` and run with ``--RunJobs``, as
the GUI would; RELION then decides the status from our markers and registers our nodes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile

from occupy_relion.relion import schemes
from occupy_relion.synthetic import make_particle, render

#: RELION 3.1's integer process status, as 4.0/5.0 name it (pipeline_jobs.h)
STATUS_NAMES = {0: "Running", 1: "Scheduled", 2: "Succeeded", 3: "Failed", 4: "Aborted"}

#: what the GUI writes for a new project: the pipeline RELION 3.1/4.0 and 5.0 start from
EMPTY_PIPELINE = {
    "3.1": "\n# version 30001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter                       {counter}\n\n",
    "5.0": "\n# version 50001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter                       {counter}\n\n",
}


def run(command: list[str], cwd: Path, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a program to its end; fail the test (with its output) when it does not exit 0."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                            check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


def start_project(project: Path, version: str, counter: int = 1) -> Path:
    """An empty RELION project directory (``version`` '3.1' or '5.0') with ``.gui_projectdir``."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "default_pipeline.star").write_text(EMPTY_PIPELINE[version].format(counter=counter))
    (project / ".gui_projectdir").touch()
    return project


def pipeline(project: Path) -> dict[str, pd.DataFrame]:
    """The tables of the project's default_pipeline.star."""
    return starfile.read(project / "default_pipeline.star", always_dict=True)


def add_job(project: Path, job_type: str, options: dict[str, str], env: dict | None = None) -> str:
    """Add a job to the pipeline with relion_pipeliner; return its name (e.g. External/job004/)."""
    counter = int(pipeline(project)["pipeline_general"]["rlnPipeLineJobCounter"])
    text = ";".join(f"{key} == {value}" for key, value in options.items())
    run(["relion_pipeliner", "--addJob", job_type, "--addJobOptions", text], project, env)
    job = f"{job_type}/job{counter:03d}/"
    assert status(project, job) == "Scheduled"
    return job


def add_external(project: Path, exe: str, env: dict | None = None, **options: str) -> str:
    """Add our External job with these job options (in_part, paramN_label, nr_threads, ...)."""
    return add_job(project, "External", {"fn_exe": exe, **options}, env)


def run_job(project: Path, job: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``relion_pipeliner --RunJobs job``: returns when RELION has seen the job end."""
    return run(["relion_pipeliner", "--RunJobs", job, "--sec_wait_after", "1"], project, env, timeout)


def wait_for(condition, what: str, timeout: float = 180, poll: float = 0.02) -> None:
    """Poll ``condition()`` until it is true; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def run_job_and_abort(project: Path, job: str, env: dict | None = None, *, when: str) -> subprocess.CompletedProcess:
    """Run ``job`` with the pipeliner and press Abort (write RELION_JOB_ABORT_NOW, as the GUI does).

    ``when``: ``"launch"`` as soon as RELION has launched the job (``run.out`` exists: RELION has
    already removed old markers), i.e. while the job is still starting up; ``"first class"`` once
    run.out names the first class.  The job should be tests.conftest's slow_job_executable, whose
    abort checks wait, so that it is still running when Abort is pressed.
    """
    run_out = project / job / "run.out"

    def started() -> bool:
        if when == "launch":
            return run_out.exists()
        return run_out.exists() and "class 001:" in run_out.read_text()

    pipeliner = subprocess.Popen(["relion_pipeliner", "--RunJobs", job, "--sec_wait_after", "1"], cwd=project,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(started, f"{job} to reach '{when}'")
        (project / job / "RELION_JOB_ABORT_NOW").write_text("")
        out, err = pipeliner.communicate(timeout=300)
    finally:
        if pipeliner.poll() is None:
            pipeliner.kill()
            pipeliner.communicate()
    assert pipeliner.returncode == 0, err
    return subprocess.CompletedProcess(pipeliner.args, pipeliner.returncode, out, err)


def status(project: Path, job: str) -> str:
    """The job's status as RELION recorded it: Scheduled, Running, Succeeded, Failed or Aborted."""
    processes = pipeline(project)["pipeline_processes"]
    row = processes[processes["rlnPipeLineProcessName"] == job]
    assert len(row) == 1, f"{job} not in the pipeline"
    if "rlnPipeLineProcessStatusLabel" in row:  # 4.0, 5.0
        return str(row["rlnPipeLineProcessStatusLabel"].iloc[0])
    return STATUS_NAMES[int(row["rlnPipeLineProcessStatus"].iloc[0])]


def registered_nodes(project: Path, job: str) -> dict[str, int | str]:
    """The output nodes RELION registered for ``job``: name -> type (3.1 integer, 4.0/5.0 label)."""
    tables = pipeline(project)
    if "pipeline_nodes" not in tables:
        return {}
    nodes = tables["pipeline_nodes"]
    mine = nodes[nodes["rlnPipeLineNodeName"].str.startswith(job)]
    if "rlnPipeLineNodeTypeLabel" in mine:
        return dict(zip(mine["rlnPipeLineNodeName"], mine["rlnPipeLineNodeTypeLabel"].astype(str)))
    return dict(zip(mine["rlnPipeLineNodeName"], mine["rlnPipeLineNodeType"].astype(int)))


def random_orientations(rng: np.random.Generator, count: int) -> pd.DataFrame:
    """``count`` orientations uniform on the sphere (rot and psi uniform, cos(tilt) uniform), centred, in
    optics group 1: a particles table for ``relion_project --ang``."""
    return pd.DataFrame({
        "rlnAngleRot": rng.uniform(-180, 180, count),
        "rlnAngleTilt": np.degrees(np.arccos(rng.uniform(-1, 1, count))),
        "rlnAnglePsi": rng.uniform(-180, 180, count),
        "rlnOriginXAngst": 0.0, "rlnOriginYAngst": 0.0, "rlnOpticsGroup": 1})


def synthetic_particles(project: Path, env: dict | None = None, box: int = 40, pixel_size: float = 3.5,
                        per_class: int = 150, noise: float = 3.0, seed: int = 0) -> None:
    """``Synthetic/particles.star``: projections (relion_project) of two maps, one whose third domain is
    there ("A") and one without it ("B"), with white noise of sd ``noise``, and
    ``Synthetic/reference.mrc`` (map A).

    The maps are rendered with :func:`occupy_relion.synthetic.render` (projections of sd ≈ 1), so a
    particle's stack name tells which map it came from.  The orientations (uniform on the sphere) and
    the noise are drawn here from ``seed`` and relion_project only projects (``--ang``): its own
    ``--nr_uniform`` and ``--add_noise`` draw different particles on every run (neither 3.1's nor 5.0's
    takes a seed), which made a tiny Class3D tell the two sets apart in some runs and not in others.
    """
    folder = project / "Synthetic"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    optics = pd.DataFrame({"rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1],
                           "rlnImagePixelSize": [pixel_size], "rlnImageSize": [box], "rlnImageDimensionality": [2],
                           "rlnVoltage": [300.0], "rlnSphericalAberration": [2.7], "rlnAmplitudeContrast": [0.1]})
    sets = []
    for name, occupancy in (("A", (1.0, 1.0, 1.0)), ("B", (1.0, 1.0, 0.0))):
        particle = make_particle(occupancy, radius=12, spacing=26, seed=3)
        volume = render(particle, (box,) * 3, pixel_size) * 13
        with mrcfile.new(folder / f"map{name}.mrc") as mrc:
            mrc.set_data(volume.astype(np.float32))
            mrc.voxel_size = pixel_size
        starfile.write({"optics": optics, "particles": random_orientations(rng, per_class)},
                       folder / f"angles{name}.star")
        run(["relion_project", "--i", f"Synthetic/map{name}.mrc", "--o", f"Synthetic/proj{name}",
             "--ang", f"Synthetic/angles{name}.star", "--angpix", str(pixel_size)], project, env)
        with mrcfile.open(folder / f"proj{name}.mrcs", mode="r+") as mrc:
            mrc.data[...] += rng.normal(0.0, noise, mrc.data.shape).astype(mrc.data.dtype)
            mrc.update_header_stats()
        star = starfile.read(folder / f"proj{name}.star", always_dict=True)
        sets.append(star["particles"])
        optics = star["optics"]
    particles = pd.concat(sets, ignore_index=True)
    particles["rlnMicrographName"] = "Synthetic/mic001.mrc"
    starfile.write({"optics": optics, "particles": particles}, folder / "particles.star")
    shutil.copy(folder / "mapA.mrc", folder / "reference.mrc")


def source_map(particles: pd.DataFrame) -> pd.Series:
    """'A' or 'B' per particle: the synthetic map it was projected from (from its stack name)."""
    return particles["rlnImageName"].str.extract(r"@Synthetic/proj(\w)\.mrcs", expand=False)


def executable_for(tmp_path: Path) -> Path:
    """The installed console script, else a wrapper running this Python's occupy_relion."""
    found = schemes.default_executable()
    if found is not None:
        return found
    wrapper = tmp_path / "occupy_relion"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m occupy_relion "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


#: tiny-run values for the shipped Schemes' and Schedules' variables (both take the same ones)
SCHEME_SETTINGS = {
    "nr_classes": "2", "nr_iter": "2", "particle_diameter": "100", "ini_high": "30",
    "sampling": "15 degrees", "offset_range": "2", "offset_step": "2", "do_ctf": "false", "threads": "2",
}


#: how each RELION runs a shipped automation: program, its name flag, the project folder
SCHEMERS = {"3.1": ("relion_scheduler", "--schedule", "Schedules"), "5.0": ("relion_schemer", "--scheme", "Schemes")}


def schemer(project: Path, version: str, name: str, *arguments: str, env: dict | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    """``relion_schemer --scheme NAME ...`` (5.0) or ``relion_scheduler --schedule NAME ...`` (3.1)."""
    program, flag, _ = SCHEMERS[version]
    return subprocess.run([program, flag, name, *arguments], cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def install_and_set(project: Path, version: str, name: str, executable: Path, settings: dict[str, str],
                    env: dict | None = None) -> Path:
    """``occupy_relion install-scheme NAME`` into the project, ``--reset``, then ``--set_var`` each setting."""
    folder = SCHEMERS[version][2]
    choice = "--schedule" if version == "3.1" else "--scheme"
    assert schemes.main([name, "--project", str(project), "--exe", str(executable), choice]) == 0
    installed = project / folder / name
    assert (installed / ("schedule.star" if version == "3.1" else "scheme.star")).is_file()
    done = schemer(project, version, name, "--reset", env=env)
    assert done.returncode == 0, done.stderr
    for variable, value in settings.items():
        done = schemer(project, version, name, "--set_var", variable, "--value", value, env=env)
        assert done.returncode == 0, done.stderr
    return installed


def run_to_the_end(project: Path, version: str, name: str, env: dict | None = None,
                   timeout: float = 600) -> str:
    """``--run`` as the GUI starts it, until the scheme reaches its exit; returns the schemer's output."""
    _, _, folder = SCHEMERS[version]
    done = schemer(project, version, name, "--run", "--pipeline_control", f"{folder}/{name}/", env=env,
                   timeout=timeout)
    log = done.stdout + done.stderr
    assert done.returncode == 0 and "reached an exit point" in log, log
    assert (project / folder / name / "RELION_JOB_EXIT_SUCCESS").is_file()
    return log


def processes(project: Path) -> dict[str, str]:
    """Every process of the pipeline: name -> status (Succeeded, Failed, ...)."""
    table = pipeline(project)["pipeline_processes"]
    return {name: status(project, name) for name in table["rlnPipeLineProcessName"]}

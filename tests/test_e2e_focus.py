"""End to end: the occupy_focus Schedule under real RELION 3.1 and the Scheme under real RELION 5.0.

Each version makes its own tiny project (``tests/focus_project.py``: two states that differ only in a
domain of 8 % of the mass, 400 particles, box 48) and a global 2-class Class3D with its own
``relion_refine``; then installs the shipped occupy_focus, sets its variables and runs
``relion_scheduler`` (3.1) or ``relion_schemer`` (5.0) to the end.  The tests read what RELION wrote:
the pipeline's job statuses, the commands in every job's ``note.txt``, the focused classes against
the simulated states (from the image names), and our job's ``occupancy.star``.

Our job writes ``variable_mask.mrc`` for every region whose occupancy differs between the classes or
is partial in every class (issue 10, 14).  The global classification of this project mixes the states,
so the variable domain is partial in both global classes, and the Scheme focuses on our mask with its
shipped default ``mask``.  Module fixtures run each Scheme once; bad inputs run short Schemes on
copies (with a mask made by ``relion_mask_create``, so they do not depend on our first job).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import starfile

from occupy_relion.relion import schemes

from . import focus_project as fp
from .conftest import SHARED, SHARED_RELION
from .test_e2e_schedule import executable_for

pytestmark = pytest.mark.relion

NAME = "occupy_focus"
#: what the tiny run sets (the rest keep their shipped values)
SETTINGS = {"nr_classes": "2", "nr_iter": "15", "particle_diameter": "100", "do_ctf": "false", "threads": "2"}
#: the jobs a full run with do_select creates, in order (job 001 is the global Class3D)
FULL_RUN = ("Class3D/job001/", "External/job002/", "Subtract/job003/", "Class3D/job004/", "External/job005/",
            "Select/job006/", "Subtract/job007/")
RUN_TIMEOUT = 1200  # seconds; a run takes 1-2 min on 2 idle cores
RELION5_BIN = SHARED / "relion5" / "bin"


@dataclass(frozen=True)
class SchemeRun:
    """One run of the installed Scheme/Schedule in a project, and what RELION wrote about it."""

    relion: fp.Relion
    project: Path
    log: str
    seconds: float
    mask: str  # the mask the Scheme was told to focus on

    @property
    def folder(self) -> str:
        return "Schedules" if self.relion.version == "3.1" else "Schemes"

    def processes(self) -> dict[str, str]:
        """Job name -> status, as words ('Succeeded', ...) for both versions."""
        table = starfile.read(self.project / "default_pipeline.star", always_dict=True)["pipeline_processes"]
        if "rlnPipeLineProcessStatusLabel" in table:
            statuses = list(table["rlnPipeLineProcessStatusLabel"])
        else:
            words = {0: "Running", 1: "Scheduled", 2: "Succeeded", 3: "Failed", 4: "Aborted"}
            statuses = [words[int(s)] for s in table["rlnPipeLineProcessStatus"]]
        return dict(zip(table["rlnPipeLineProcessName"], statuses))

    def note(self, job: str) -> str:
        """The command RELION ran for a job (from its note.txt)."""
        return (self.project / job / "note.txt").read_text()

    def job_seconds(self, job: str) -> float:
        """Wall time of a job: from RELION writing its note.txt to the job's exit marker."""
        return ((self.project / job / "RELION_JOB_EXIT_SUCCESS").stat().st_mtime
                - (self.project / job / "note.txt").stat().st_mtime)


def schemer(relion: fp.Relion, project: Path, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    program, flag = ("relion_scheduler", "--schedule") if relion.version == "3.1" else ("relion_schemer", "--scheme")
    return subprocess.run([program, flag, NAME, *arguments], cwd=project, env=relion.env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def install_and_run(relion: fp.Relion, base: Path, project: Path, exe: Path, **values: str) -> SchemeRun:
    """Copy ``base`` to ``project``, install occupy_focus, set ``values`` and run it to the end."""
    shutil.copytree(base, project)
    flag = "--schedule" if relion.version == "3.1" else "--scheme"
    assert schemes.main([NAME, "--project", str(project), "--exe", str(exe), flag]) == 0
    folder = "Schedules" if relion.version == "3.1" else "Schemes"
    # a fixed seed for the focused classification (users edit the installed copy the same way)
    focus_job = project / folder / NAME / "focus3d" / "job.star"
    seeded = focus_job.read_text().replace('other_args         ""', f'other_args "--random_seed {fp.SEED}"')
    focus_job.write_text(seeded)
    assert schemer(relion, project, "--reset").returncode == 0
    for name, value in values.items():
        done = schemer(relion, project, "--set_var", name, "--value", value)
        assert done.returncode == 0, done.stdout + done.stderr
    start = time.monotonic()
    run = schemer(relion, project, "--run", "--pipeline_control", f"{folder}/{NAME}/", timeout=RUN_TIMEOUT)
    seconds = time.monotonic() - start
    log = run.stdout + run.stderr
    assert "reached an exit point" in log or "Stopping sche" in log, log[-3000:]
    return SchemeRun(relion, project, log, seconds, values.get("mask", ""))


@dataclass(frozen=True)
class Prepared:
    relion: fp.Relion
    base: Path  # the project with the global Class3D only
    exe: Path
    class3d_seconds: float


def _prepare(relion: fp.Relion | None, factory, why: str) -> Prepared:
    if relion is None:
        pytest.skip(why)
    root = factory.mktemp(f"focus{relion.version.replace('.', '')}")
    base = root / "base"
    seconds = fp.make_project(base, relion)
    return Prepared(relion, base, executable_for(root), seconds)


@pytest.fixture(scope="module")
def prepared31(tmp_path_factory) -> Prepared:
    return _prepare(fp.relion31(), tmp_path_factory, "needs Debian's RELION 3.1 programs on PATH")


@pytest.fixture(scope="module")
def prepared50(tmp_path_factory) -> Prepared:
    return _prepare(fp.relion50(RELION5_BIN), tmp_path_factory, f"needs RELION 5.0 programs in {RELION5_BIN}")


def _full_run(prepared: Prepared, factory) -> SchemeRun:
    values = {**SETTINGS, "input_data": str(fp.last_iteration(prepared.base / fp.CLASS3D_JOB).relative_to(
        prepared.base)), "do_select": "true"}  # the shipped mask: our variable_mask.mrc
    run = install_and_run(prepared.relion, prepared.base, factory.mktemp("full") / "project", prepared.exe, **values)
    _print_numbers(prepared, run)
    return run


@pytest.fixture(scope="module")
def run31(prepared31, tmp_path_factory) -> SchemeRun:
    return _full_run(prepared31, tmp_path_factory)


@pytest.fixture(scope="module")
def run50(prepared50, tmp_path_factory) -> SchemeRun:
    return _full_run(prepared50, tmp_path_factory)


@pytest.fixture(params=["3.1", "5.0"])
def full(request) -> tuple[SchemeRun, Prepared]:
    """The full run and its preparation, for each RELION version."""
    if request.param == "3.1":
        return request.getfixturevalue("run31"), request.getfixturevalue("prepared31")
    return request.getfixturevalue("run50"), request.getfixturevalue("prepared50")


def _print_numbers(prepared: Prepared, run: SchemeRun) -> None:
    """Separation and timings (pytest -s shows them; the README quotes them)."""
    global_separation = fp.separation(fp.last_iteration(prepared.base / fp.CLASS3D_JOB))
    focused = fp.separation(fp.last_iteration(run.project / "Class3D/job004"))
    jobs = {job: run.job_seconds(job) for job in FULL_RUN[1:]
            if (run.project / job / "RELION_JOB_EXIT_SUCCESS").exists()}
    ours = sum(seconds for job, seconds in jobs.items() if job.startswith("External/"))

    def region(job: str) -> str:
        found = fp.region_at_variable_domain(run.project / job / "occupancy.star")
        return "none" if found is None else " / ".join(f"{v:.2f}" for v in found["occupyRegionOccupancy"])

    print(f"\n[occupy_focus RELION {run.relion.version}] global Class3D {prepared.class3d_seconds:.0f} s, "
          f"purity {global_separation.accuracy:.3f} ARI {global_separation.adjusted_rand:.3f} "
          f"{global_separation.table.to_numpy().tolist()} region {region('External/job002')}; "
          f"focused purity {focused.accuracy:.3f} ARI {focused.adjusted_rand:.3f} "
          f"{focused.table.to_numpy().tolist()} region {region('External/job005')}; "
          f"scheme {run.seconds:.0f} s, jobs " + ", ".join(f"{j} {s:.1f} s" for j, s in jobs.items())
          + f"; ours {ours:.1f} s")


# ------------------------------------------------------------------------------------------ full runs


def test_every_job_of_the_scheme_is_a_succeeded_relion_job(full):
    run, _ = full
    assert run.processes() == dict.fromkeys(FULL_RUN, "Succeeded"), run.log[-3000:]
    assert "reached an exit point" in run.log
    for job in FULL_RUN[1:]:
        assert (run.project / job / "RELION_JOB_EXIT_SUCCESS").is_file(), job


def test_our_first_job_finds_the_variable_domain_in_the_global_classes(full):
    """The global classes mix the states: the domain is partial in both (or differs), and it is the
    only region; its mask covers it and leaves the constant domains alone."""
    run, _ = full
    region = fp.region_at_variable_domain(run.project / "External/job002/occupancy.star")
    assert region is not None, (run.project / "External/job002/run.out").read_text()[-3000:]
    assert set(region["rlnClassNumber"]) == {1, 2} and region["occupyRegionVariability"].iloc[0] >= 0.25
    every = starfile.read(run.project / "External/job002/occupancy.star", always_dict=True)["occupancy_regions"]
    assert set(every["occupyRegionNumber"]) == {1}, every  # no region in the constant domains
    nodes = starfile.read(run.project / "External/job002/RELION_OUTPUT_NODES.star", always_dict=True)
    assert "External/job002/variable_mask.mrc" in set(nodes["output_nodes"]["rlnPipeLineNodeName"])
    inside, outside = fp.mask_at_domains(run.project / "External/job002/variable_mask.mrc")
    assert inside >= 0.99 and max(outside) <= 0.05, (inside, outside)  # measured ≤ 0.03 (its soft edge)


def test_subtract_used_our_variable_mask_on_the_input_iteration(full):
    run, prepared = full
    note = run.note("Subtract/job003/")
    root = str(fp.last_iteration(prepared.base / fp.CLASS3D_JOB).relative_to(prepared.base)).removesuffix("data.star")
    assert f"relion_particle_subtract` --i {root}optimiser.star" in note  # derived from input_data
    assert "--mask External/job002/variable_mask.mrc " in note
    assert run.mask == ""  # the shipped default, not a mask set by the test
    assert "--recenter_on_mask" not in note and "--new_box" not in note


def test_focused_class3d_ran_without_alignment_on_the_subtracted_particles(full):
    run, _ = full
    note = run.note("Class3D/job004/")
    assert "--i Subtract/job003/particles_subtracted.star" in note
    assert "--skip_align" in note and "--healpix_order" not in note
    assert "--solvent_mask External/job002/variable_mask.mrc " in note
    assert "--ref External/job002/class00" in note and "_equalised.mrc" in note  # our equalised map
    assert "--K 2 " in note and "--tau2_fudge 10 " in note
    options = starfile.read(run.project / "Class3D/job004/job.star", always_dict=True)["joboptions_values"]
    assert dict(zip(options["rlnJobOptionVariable"], options["rlnJobOptionValue"]))["dont_skip_align"] == "No"


def test_our_job_reports_the_focused_classes(full):
    run, _ = full
    note = run.note("External/job005/")
    assert "--in_parts Class3D/job004/run_it015_data.star" in note and "--joint yes" in note
    summary = starfile.read(run.project / "External/job005/occupancy.star", always_dict=True)
    assert summary["occupancy_general"]["rlnModelStarFile"] == "Class3D/job004/run_it015_model.star"
    classes = summary["occupancy_classes"]
    assert sorted(classes["rlnClassNumber"]) == [1, 2]
    assert classes["rlnClassDistribution"].sum() == pytest.approx(1.0, abs=0.01)


def test_our_job_reports_the_region_occupancies_of_the_focused_classes(full):
    """The variable domain is a region of the focused classes: full in the class of the particles that
    have it, at most half in the other."""
    run, _ = full
    region = fp.region_at_variable_domain(run.project / "External/job005/occupancy.star")
    assert region is not None, (run.project / "External/job005/run.out").read_text()[-3000:]
    assert set(region["rlnClassNumber"]) == {1, 2}
    occupancy = dict(zip(region["rlnClassNumber"], region["occupyRegionOccupancy"]))
    with_domain = int(fp.separation(fp.last_iteration(run.project / "Class3D/job004")).table["present"].idxmax())
    without = ({1, 2} - {with_domain}).pop()
    assert occupancy[with_domain] >= 0.75 and occupancy[without] <= 0.5, occupancy


def test_focused_classes_separate_the_states_better_than_the_global_classification(full):
    run, prepared = full
    global_separation = fp.separation(fp.last_iteration(prepared.base / fp.CLASS3D_JOB))
    focused = fp.separation(fp.last_iteration(run.project / "Class3D/job004"))
    assert focused.accuracy >= 0.75, focused.table
    assert focused.accuracy >= global_separation.accuracy + 0.15, (focused.table, global_separation.table)


def test_the_class_with_the_domain_is_selected_and_reverted_to_the_original_particles(full):
    run, _ = full
    focused = fp.separation(fp.last_iteration(run.project / "Class3D/job004"))
    with_domain = int(focused.table["present"].idxmax())
    classes = starfile.read(run.project / "External/job005/occupancy.star", always_dict=True)["occupancy_classes"]
    assert int(classes.loc[classes["rlnAverageValue"].idxmax(), "rlnClassNumber"]) == with_domain
    assert f"--minval {with_domain} --maxval {with_domain}" in run.note("Select/job006/")
    selected = starfile.read(run.project / "Select/job006/particles.star", always_dict=True)["particles"]
    assert set(selected["rlnClassNumber"]) == {with_domain}
    assert "--revert Select/job006/particles.star" in run.note("Subtract/job007/")
    reverted = starfile.read(run.project / "Subtract/job007/original.star", always_dict=True)["particles"]
    assert len(reverted) == len(selected)
    assert reverted["rlnImageName"].str.contains("@Simulation/").all()  # the original, un-subtracted images
    assert fp.separation(run.project / "Subtract/job007/original.star").purity_of("present") >= 0.75


# ------------------------------------------------------------------------------------------ bad inputs


def _short_run(prepared: Prepared, tmp_path: Path, **values: str) -> SchemeRun:
    values = {**SETTINGS, "mask": fp.FOCUS_MASK, **values}
    return install_and_run(prepared.relion, prepared.base, tmp_path / "project", prepared.exe, **values)


def _reported(run: SchemeRun, operator: str, value: str) -> bool:
    """The Scheme's log line of an operator's result (3.1: 'OP => v'; 5.0: 'OP: variable -> v')."""
    return any(line.strip().startswith(f"+ {operator}") and line.rstrip().endswith(value)
               for line in run.log.splitlines())


def test_missing_input_data_stops_before_any_job(prepared31, tmp_path):
    run = _short_run(prepared31, tmp_path, input_data="Class3D/job001/run_it099_data.star")
    assert _reported(run, "CHECK_input_data_exists", "False") and "reached an exit point" in run.log
    assert run.processes() == {"Class3D/job001/": "Succeeded"}


@pytest.mark.parametrize("version", ["3.1", "5.0"])
def test_input_data_without_optimiser_stops_before_any_job(version, request, tmp_path):
    prepared = request.getfixturevalue("prepared31" if version == "3.1" else "prepared50")
    data = fp.last_iteration(prepared.base / fp.CLASS3D_JOB)
    lone = tmp_path / "lone"
    shutil.copytree(prepared.base, lone)
    shutil.copy(lone / data.relative_to(prepared.base), lone / "Class3D/job001/copied_data.star")
    run = _short_run(Prepared(prepared.relion, lone, prepared.exe, 0.0), tmp_path,
                     input_data="Class3D/job001/copied_data.star")
    assert _reported(run, "NAME_optimiser", "Class3D/job001/copied_optimiser.star")
    assert _reported(run, "CHECK_optimiser_beside_input_data", "False") and "reached an exit point" in run.log
    assert run.processes() == {"Class3D/job001/": "Succeeded"}


def test_data_star_of_a_2d_classification_fails_our_first_job_with_one_line(prepared31, tmp_path):
    """A Class2D iteration (optimiser.star and a 2D model.star beside it): our job fails, RELION stops."""
    class2d = SHARED_RELION / "relion40_class2d_metadata"
    if not class2d.is_dir():
        pytest.skip(f"shared RELION files not found: {class2d}")
    odd = tmp_path / "odd"
    shutil.copytree(prepared31.base, odd)
    (odd / "Class2D/job007").mkdir(parents=True)
    for suffix in ("model.star", "optimiser.star"):
        shutil.copy(class2d / f"run_it025_{suffix}", odd / f"Class2D/job007/run_it025_{suffix}")
    shutil.copy(fp.last_iteration(odd / fp.CLASS3D_JOB), odd / "Class2D/job007/run_it025_data.star")
    run = _short_run(Prepared(prepared31.relion, odd, prepared31.exe, 0.0), tmp_path,
                     input_data="Class2D/job007/run_it025_data.star")
    assert _reported(run, "CHECK_optimiser_beside_input_data", "True")
    assert "Stopping schedule due to job External/job002/ failing" in run.log
    assert run.processes() == {"Class3D/job001/": "Succeeded", "External/job002/": "Failed"}
    errors = [line for line in (run.project / "External/job002/run.err").read_text().splitlines()
              if line.startswith("ERROR")]
    assert len(errors) == 1 and "Class2D/job007/run_it025_model.star" in errors[0] and "2D" in errors[0], errors


def test_missing_mask_stops_after_our_job(prepared31, tmp_path):
    data = fp.last_iteration(prepared31.base / fp.CLASS3D_JOB).relative_to(prepared31.base)
    run = _short_run(prepared31, tmp_path, input_data=str(data), mask="Masks/no_such_mask.mrc")
    assert _reported(run, "FIND_mask", "undefined") and _reported(run, "CHECK_mask_exists", "False")
    assert run.processes() == {"Class3D/job001/": "Succeeded", "External/job002/": "Succeeded"}


def test_recentred_subtraction_stops_after_subtract(prepared50, tmp_path):
    """Re-centred particles no longer match the reference and mask frame: no focused Class3D on them."""
    data = fp.last_iteration(prepared50.base / fp.CLASS3D_JOB).relative_to(prepared50.base)
    run = _short_run(prepared50, tmp_path, input_data=str(data), do_recenter="true", new_box="32")
    assert "--recenter_on_mask" in run.note("Subtract/job003/") and "--new_box 32" in run.note("Subtract/job003/")
    assert _reported(run, "DECIDE_stop_after_subtract", "True")
    assert run.processes() == {"Class3D/job001/": "Succeeded", "External/job002/": "Succeeded",
                               "Subtract/job003/": "Succeeded"}
    subtracted = starfile.read(run.project / "Subtract/job003/particles_subtracted.star", always_dict=True)
    assert int(pd.to_numeric(subtracted["optics"]["rlnImageSize"]).iloc[0]) == 32

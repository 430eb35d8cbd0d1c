"""The job driver as RELION runs it (from the project directory), without RELION itself.

Most tests replace the PDF report by a cheap stand-in (it is tested on its own and costs seconds);
``test_real_report_is_registered`` runs the real one.
"""

from __future__ import annotations

import inspect
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

import occupy_relion.report as report_module
from occupy_relion.cli import main
from occupy_relion.relion import markers
from occupy_relion.relion.summary import read_summary

from ..conftest import SHARED_MAPS, SLOW_JOB, write_model, write_mrc

JOB = "External/job012/"


@pytest.fixture
def quick_report(monkeypatch):
    """A stand-in report: writes a tiny logfile.pdf and occupy.cxc, records what it was given."""
    calls = []

    def fake_write_report(job_dir, run, classes, **kwargs):
        calls.append({"run": run, "classes": classes})
        into = Path(kwargs.get("into") or job_dir)
        into.mkdir(parents=True, exist_ok=True)
        paths = [into / "logfile.pdf", into / "occupy.cxc"]
        paths[0].write_bytes(b"%PDF-1.4\n%%EOF\n")
        paths[1].write_text("# ChimeraX\n")
        return paths

    monkeypatch.setattr(report_module, "write_report", fake_write_report)
    return calls


def run(project: Path, *arguments: str, capsys=None, abort_check=markers.check_abort) -> tuple[int, str, str]:
    """Run the job in ``project`` like RELION does; return (exit code, stdout, stderr)."""
    code = main(["--o", JOB, *arguments, "--j", "1"], abort_check=abort_check)
    out, err = capsys.readouterr() if capsys else ("", "")
    return code, out, err


def nodes_of(project: Path) -> dict[str, tuple[int | None, str | None]]:
    """name -> (3.1 integer, 4.0/5.0 label); None for a column not written for the project's version."""
    table = starfile.read(project / JOB / markers.OUTPUT_NODES)
    return {row.rlnPipeLineNodeName: (int(row.rlnPipeLineNodeType) if hasattr(row, "rlnPipeLineNodeType") else None,
                                      getattr(row, "rlnPipeLineNodeTypeLabel", None))
            for row in table.itertuples()}


def markers_in(project: Path) -> set[str]:
    names = (*markers.EXIT_MARKERS, markers.ABORT_NOW, markers.OUTPUT_NODES)
    return {name for name in names if (project / JOB / name).exists()}


def test_classification_outputs_nodes_and_summary(synthetic_project, in_project, quick_report, capsys):
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 0, err
    job = synthetic_project / JOB
    for number in (1, 2):
        for kind in ("scale", "confidence", "equalised"):
            with mrcfile.open(job / f"class{number:03d}_{kind}.mrc") as mrc:
                assert mrc.data.dtype == np.float32 and mrc.data.shape == (40, 40, 40)
                assert float(mrc.voxel_size.x) == pytest.approx(2.0)
    assert markers_in(synthetic_project) == {markers.SUCCESS, markers.OUTPUT_NODES}
    success = (job / markers.SUCCESS).stat().st_mtime_ns
    logs = (markers.SUCCESS, "run.out", "run.err")  # the log goes on after the success marker, as under RELION
    assert all(p.stat().st_mtime_ns <= success for p in job.iterdir() if p.name not in logs)
    nodes = nodes_of(synthetic_project)
    assert nodes[JOB + "class001_equalised.mrc"] == (6, "DensityMap.mrc")
    assert nodes[JOB + "class002_scale.mrc"] == (12, "Image3D.mrc.localresmap")
    assert nodes[JOB + "logfile.pdf"] == (13, "LogFile.pdf.relion")
    assert nodes[JOB + "occupancy.star"][1] == "ProcessData.star.occupy"  # no pipeline: 5.0 labels
    assert JOB + "class001_confidence.mrc" not in nodes
    general, classes = read_summary(job / "occupancy.star")
    assert general["rlnModelStarFile"] == "Class3D/job005/run_it020_model.star"
    assert general["occupyLowpassAngstrom"] == pytest.approx(8.0)
    assert list(classes["rlnClassNumber"]) == [1, 2]
    assert list(classes["rlnReferenceImage"]) == [JOB + "class001_equalised.mrc", JOB + "class002_equalised.mrc"]
    assert list(classes["rlnClassDistribution"]) == pytest.approx([0.6, 0.4])
    assert classes["rlnAverageValue"][1] < classes["rlnAverageValue"][0]  # class 2 lacks most of a domain
    # run.out: what was read, the settings, one line per class with its time
    assert "input: --in_parts Class3D/job005/run_it020_data.star -> Class3D/job005/run_it020_model.star" in out
    assert "derived settings:" in out and "low-pass 8 Å" in out
    assert "maximum gain 4" in out and general["occupyMaxGain"] == pytest.approx(4.0)
    assert out.count("noise floor") >= 4 and "no half maps: the map's own solvent" in out  # which noise, why
    assert out.count(" done in ") == 2 and "class 002 done in" in out
    assert err == ""
    # run from a shell (here: not redirected into the job directory), the job keeps the same log there
    assert (job / "run.out").read_text() == out and (job / "run.err").read_text() == ""
    (summary,) = [c["classes"] for c in quick_report]
    assert [s.number for s in summary] == [1, 2] and summary[0].view.slices.input[0].shape == (40, 40)


def test_attenuate_sigmoid_and_flags(synthetic_project, in_project, quick_report, capsys):
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star",
                         "--attenuate", "2", "--sigmoid", "3", "--pivot", "0.4", "--exclude_solvent", "--mode",
                         "occupancy", capsys=capsys)
    assert code == 0, err
    nodes = nodes_of(synthetic_project)
    for name in ("class001_attenuated.mrc", "class002_sigmoid.mrc"):
        assert nodes[JOB + name] == (6, "DensityMap.mrc")
    general, classes = read_summary(synthetic_project / JOB / "occupancy.star")
    assert general["occupyAttenuate"] == 2 and general["occupyExcludeSolvent"] == 1
    assert classes["occupySigmoidMap"][0] == JOB + "class001_sigmoid.mrc"


def test_joint_normalisation(synthetic_project, in_project, quick_report, capsys):
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", "--joint",
                         capsys=capsys)
    assert code == 0, err
    general, classes = read_summary(synthetic_project / JOB / "occupancy.star")
    assert general["occupyJoint"] == 1 and general["occupyJointReference"] > 0
    assert classes["occupyReferenceValue"][0] == pytest.approx(classes["occupyReferenceValue"][1])
    assert "joint reference" in out and quick_report[0]["run"].joint is True


def test_empty_classes_are_skipped(synthetic_project, in_project, quick_report, capsys):
    job = synthetic_project / "Class3D" / "job005"
    write_mrc(job / "run_it020_class003.mrc", np.zeros((40, 40, 40)), 2.0)
    names = [f"Class3D/job005/run_it020_class00{n}.mrc" for n in (1, 2, 3)]
    write_model(job / "run_it020_model.star", names, [0.6, 0.0, 0.4], 2.0, 40)
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 0, err
    assert "class 2" in err and "_rlnClassDistribution 0" in err
    assert "run_it020_class003.mrc" in err and "all zeros" in err
    general, classes = read_summary(synthetic_project / JOB / "occupancy.star")
    assert list(classes["rlnClassNumber"]) == [1]
    assert str(general["occupyClassesSkipped"]) == "2,3"
    assert not (synthetic_project / JOB / "class002_scale.mrc").exists()


def test_every_class_empty_fails(synthetic_project, in_project, quick_report, capsys):
    job = synthetic_project / "Class3D" / "job005"
    write_model(job / "run_it020_model.star", ["Class3D/job005/run_it020_class001.mrc"], [0.0], 2.0, 40)
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 1 and "every class is empty" in err
    assert markers_in(synthetic_project) == {markers.FAILURE}


def _fail_case(project: Path, case: str) -> tuple[list[str], str]:
    job = project / "Class3D" / "job005"
    args = ["--in_parts", "Class3D/job005/run_it020_data.star"]
    if case == "mask size":
        write_mrc(project / "mask.mrc", np.ones((32, 32, 32)), 2.0)
        return args + ["--in_mask", "mask.mrc"], "mask.mrc: mask size 32x32x32 differs"
    if case == "map size":
        write_mrc(job / "run_it020_class002.mrc", np.random.default_rng(1).normal(size=(36, 40, 40)), 2.0)
        return args, "run_it020_class002.mrc: size 40x40x36 differs from Class3D/job005/run_it020_class001.mrc"
    if case == "pixel size":
        with mrcfile.open(job / "run_it020_class002.mrc", "r+") as mrc:
            mrc.voxel_size = 2.5
        return args, "run_it020_class002.mrc: pixel size 2.5 Å differs"
    if case == "non-finite":
        with mrcfile.open(job / "run_it020_class002.mrc", "r+") as mrc:
            mrc.data[5, 5, 5] = np.inf
        return args, "run_it020_class002.mrc: 1 voxels are NaN or infinite"
    if case == "missing map":
        (job / "run_it020_class001.mrc").unlink()
        return args, "Class3D/job005/run_it020_class001.mrc: map of class 1 not found"
    if case == "lowpass":
        return args + ["--lowpass", "3"], "--lowpass: lowpass 3.0 Å is finer than Nyquist"
    if case == "bad number":
        return args + ["--amplify", "lots"], "--amplify: 'lots' is not a number"
    if case == "missing model":
        (job / "run_it020_model.star").unlink()
        return args, "run_it020_data.star: no model.star beside it"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["mask size", "map size", "pixel size", "non-finite", "missing map", "lowpass",
                                  "bad number", "missing model"])
def test_bad_input_fails_cleanly(synthetic_project, in_project, quick_report, capsys, case):
    (synthetic_project / JOB).mkdir(parents=True)
    (synthetic_project / JOB / markers.SUCCESS).write_text("")  # stale, from an earlier run
    arguments, message = _fail_case(synthetic_project, case)
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, *arguments, capsys=capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: ") and message in lines[0], err
    assert markers_in(synthetic_project) == {markers.FAILURE}
    assert not list((synthetic_project / JOB).glob(".occupy-tmp-*"))  # no half-written file


def test_abort_inside_a_long_step(synthetic_project, in_project, quick_report, capsys):
    """The first abort check made from inside the core (a long step) stops the job there."""
    seen = []

    def abort_inside_the_core(job_dir):
        inside = [f.function for f in inspect.stack() if "occupy_relion/core/" in f.filename.replace("\\", "/")]
        if inside:
            seen.append(inside[-1])  # the outermost core function on the stack
            (job_dir / markers.ABORT_NOW).write_text("")
        markers.check_abort(job_dir)

    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys,
                         abort_check=abort_inside_the_core)
    assert seen == ["measure"]  # the job stopped at the first check inside the core's first long step
    assert code == 2 and "aborted" in out
    assert markers_in(synthetic_project) == {markers.ABORTED}
    assert not list((synthetic_project / JOB).glob("*.mrc"))


def test_abort_between_classes(synthetic_project, in_project, quick_report, capsys):
    job = synthetic_project / JOB

    staged = []

    def abort_after_class_1(job_dir):
        if (job / ".occupy-staging" / "class001_equalised.mrc").exists():  # class 1 written, not yet published
            staged.append(True)
            (job_dir / markers.ABORT_NOW).write_text("")
        markers.check_abort(job_dir)

    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys,
                         abort_check=abort_after_class_1)
    assert code == 2 and staged
    assert not list(job.glob("class*.mrc")) and not (job / ".occupy-staging").exists()  # nothing of the run stays
    assert markers_in(synthetic_project) == {markers.ABORTED}


def test_abort_pressed_while_the_job_starts_is_honoured(synthetic_project, in_project, quick_report, capsys):
    """RELION deletes ABORT_NOW before the launch, so one present at start came after it: stop, do not delete it."""
    (synthetic_project / JOB).mkdir(parents=True)
    (synthetic_project / JOB / markers.ABORT_NOW).write_text("")
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 2 and f"aborted ({JOB}{markers.ABORT_NOW} found)" in out
    assert markers_in(synthetic_project) == {markers.ABORTED}
    assert not list((synthetic_project / JOB).glob("class*.mrc")) and quick_report == []


def test_rerun_in_the_same_directory(synthetic_project, in_project, quick_report, capsys):
    in_project(synthetic_project)
    arguments = ["--in_parts", "Class3D/job005/run_it020_data.star"]
    assert run(synthetic_project, *arguments, capsys=capsys)[0] == 0
    assert run(synthetic_project, *arguments, capsys=capsys)[0] == 0
    assert markers_in(synthetic_project) == {markers.SUCCESS, markers.OUTPUT_NODES}
    # a failing re-run leaves no success and no node list of the earlier run
    assert run(synthetic_project, *arguments, "--in_mask", "nothing.mrc", capsys=capsys)[0] == 1
    assert markers_in(synthetic_project) == {markers.FAILURE}
    assert run(synthetic_project, *arguments, capsys=capsys)[0] == 0
    assert markers_in(synthetic_project) == {markers.SUCCESS, markers.OUTPUT_NODES}


def test_report_failure_is_only_a_warning(synthetic_project, in_project, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(report_module, "write_report", broken)
    (synthetic_project / JOB).mkdir(parents=True)
    (synthetic_project / JOB / "logfile.pdf").write_bytes(b"%PDF stale")
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 0
    assert "WARNING: report not written (RuntimeError: matplotlib exploded)" in err
    assert JOB + "logfile.pdf" not in nodes_of(synthetic_project)  # the stale one is not registered
    assert markers.SUCCESS in markers_in(synthetic_project)


def test_real_report_is_registered(synthetic_project, in_project, capsys):
    from pypdf import PdfReader

    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 0 and err == ""
    assert f"wrote {JOB}logfile.pdf, {JOB}occupy.cxc" in out
    assert nodes_of(synthetic_project)[JOB + "logfile.pdf"] == (13, "LogFile.pdf.relion")
    # the answer page (regions x classes), the comparison, the run, 2 classes
    assert len(PdfReader(str(synthetic_project / JOB / "logfile.pdf")).pages) == 5
    assert 'name "class 2"' in (synthetic_project / JOB / "occupy.cxc").read_text()


def test_refine3d_uses_half_maps_for_the_noise(relion31_copy, in_project, quick_report, capsys):
    in_project(relion31_copy)
    code, out, err = run(relion31_copy, "--model", "Refine3D/job010/", capsys=capsys)
    assert code == 0, err
    _, classes = read_summary(relion31_copy / JOB / "occupancy.star")
    assert classes["occupyNoiseFloorSource"][0] == "noise map"
    assert "noise from half maps" in out and "half-map noise filtered like the map (the map's solvent has" in out
    nodes = nodes_of(relion31_copy)
    assert JOB + "occupancy.star" not in nodes  # RELION 3.1 project: no integer type fits the table
    assert nodes[JOB + "class001_equalised.mrc"] == (6, None)  # 3.1 reads (and gets) the integer only


def test_forced_relion_version(relion31_copy, in_project, quick_report, capsys):
    in_project(relion31_copy)
    code, out, err = run(relion31_copy, "--in_parts", "Class3D/job003/run_it010_data.star",
                         "--relion_version", "4.0", capsys=capsys)
    assert code == 0, err
    assert "RELION version: 4.0 (from --relion_version)" in out
    assert nodes_of(relion31_copy)[JOB + "occupancy.star"][1] == "ProcessData.star.occupy"


def test_lone_noncubic_map_keeps_its_geometry(shared_relion, tmp_path, in_project, quick_report, capsys):
    source = SHARED_MAPS / "emd_1703.map"
    if not source.exists():
        pytest.skip("shared maps not found")
    data = mrcfile.read(source)
    write_mrc(tmp_path / "maps" / "desmosome.mrc", data, 6.0, origin=(12.0, 24.0, 36.0), start=(5, 6, 7))
    in_project(tmp_path)
    code, out, err = run(tmp_path, "--in_3dref", "maps/desmosome.mrc", capsys=capsys)
    assert code == 0, err
    with mrcfile.open(tmp_path / JOB / "class001_equalised.mrc") as mrc:
        assert mrc.data.shape == data.shape
        assert tuple(float(v) for v in mrc.header.origin.tolist()) == (12.0, 24.0, 36.0)
        assert (int(mrc.header.nxstart), int(mrc.header.nystart), int(mrc.header.nzstart)) == (5, 6, 7)
        assert float(mrc.voxel_size.y) == pytest.approx(6.0)
    _, classes = read_summary(tmp_path / JOB / "occupancy.star")
    assert classes["rlnEstimatedResolution"][0] == 0.0 and classes["rlnClassDistribution"][0] == 1.0  # as RELION
    assert math.isfinite(classes["rlnAverageValue"][0])


def test_unwritable_output_directory(synthetic_project, in_project, quick_report, capsys):
    (synthetic_project / "External").write_text("a file where the job directory should go")
    in_project(synthetic_project)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 1
    assert err.startswith("ERROR: External/job012: cannot create the job directory")


def test_inputs_are_never_modified(synthetic_project, in_project, quick_report, capsys):
    before = {p: p.read_bytes() for p in synthetic_project.rglob("*") if p.is_file()}
    in_project(synthetic_project)
    assert run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", "--joint", capsys=capsys)[0] == 0
    assert {p: p.read_bytes() for p in before} == before


def _start_slow_job(project: Path, **redirect) -> subprocess.Popen:
    """The job in a process of its own, every abort check slowed down (SLOW_JOB)."""
    return subprocess.Popen([sys.executable, "-c", SLOW_JOB, "--o", JOB, "--in_parts",
                             "Class3D/job005/run_it020_data.star", "--j", "1"], cwd=project, text=True, **redirect)


def test_sigterm_ends_aborted(synthetic_project):
    """A queue system's kill (SIGTERM) stops the job with RELION_JOB_EXIT_ABORTED, not a silent death."""
    process = _start_slow_job(synthetic_project, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (synthetic_project / JOB).is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)  # the job directory appears once the handler is installed
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2, err
    assert "aborted (signal SIGTERM)" in err
    assert markers_in(synthetic_project) == {markers.ABORTED}
    assert "aborted (signal SIGTERM)" in (synthetic_project / JOB / "run.err").read_text()


def test_log_is_not_doubled_under_relion_redirection(synthetic_project):
    """RELION appends stdout/stderr to run.out/run.err itself: the job must not write its lines twice."""
    job = synthetic_project / JOB
    job.mkdir(parents=True)
    with open(job / "run.out", "a") as out, open(job / "run.err", "a") as err:
        assert _run_as_relion(synthetic_project, out, err) == 0
    text = (job / "run.out").read_text()
    assert text.count(" done: 2 classes") == 1 and text.count("of every class\n") == 1


#: the job without its PDF report (tested on its own; it costs seconds), in a process of its own
QUICK_JOB = """
import sys
import occupy_relion.report
from occupy_relion.cli import main

occupy_relion.report.write_report = lambda *args, **kwargs: []
sys.exit(main(sys.argv[1:]))
"""


def _run_as_relion(project: Path, out, err) -> int:
    """The job as RELION starts it: from the project directory, stdout and stderr appended to the logs."""
    process = subprocess.run([sys.executable, "-c", QUICK_JOB, "--o", JOB, "--in_parts",
                              "Class3D/job005/run_it020_data.star", "--j", "1"], cwd=project, stdout=out, stderr=err,
                             timeout=120)
    return process.returncode


def test_relion50_project_gets_50_labels(relion50_copy, in_project, quick_report, capsys):
    in_project(relion50_copy)
    code, out, err = run(relion50_copy, "--in_parts", "Class3D/job003/run_it005_data.star", "--pipeline_control",
                         JOB, capsys=capsys)
    assert code == 0, err
    assert "RELION version: 5.0 (from default_pipeline.star)" in out
    nodes = nodes_of(relion50_copy)
    assert nodes[JOB + "class002_equalised.mrc"] == (None, "DensityMap.mrc")  # 5.0 reads the label only
    assert nodes[JOB + "occupancy.star"] == (None, "ProcessData.star.occupy")
    assert nodes[JOB + "logfile.pdf"] == (None, "LogFile.pdf.relion")

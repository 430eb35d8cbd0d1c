"""Faults and bad inputs, run the way RELION runs an External job (issue 12).

Every case takes a fresh copy of the real RELION 3.1 project (``shared/relion/relion31_project``),
breaks one thing, and runs the installed console script from the project directory with RELION's
command line and redirection (``>> run.out 2>> run.err``).  Every file outside the job directory is
hashed before and after.  A failure must give: exit code 1, RELION_JOB_EXIT_FAILURE alone, exactly
one ERROR line (naming the file or option) and nothing else but WARNING lines in run.err, no
traceback, no output under a final name (the directory holds only logs and the marker), inputs
byte-for-byte unchanged.  ``FAULTS`` is the family of bad inputs, each run by one parametrized test;
the other tests are odd inputs that run (with a warning), re-runs, concurrent runs, abort and signals,
memory, and read-only and full disks, which mount a small tmpfs (root only; skipped otherwise).
docs/faults.md lists what a person sees in each case.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from occupy_relion.relion import markers

from .conftest import SHARED_RELION, SLOW_JOB, copy_tree, write_mrc

JOB = "External/job099/"
DATA = "Class3D/job003/run_it010_data.star"
MODEL = "Class3D/job003/run_it010_model.star"
CLASS1 = "Class3D/job003/run_it010_class001.mrc"
CLASS2 = "Class3D/job003/run_it010_class002.mrc"
#: what a job directory may hold after a failure besides the marker (hidden: the lock)
LOGS = {"run.out", "run.err", ".occupy_relion.lock"}
OUTPUTS = {f"class00{n}_{kind}.mrc" for n in (1, 2) for kind in ("scale", "confidence", "equalised")} | {
    "occupancy.star", "logfile.pdf", "occupy.cxc", markers.OUTPUT_NODES, markers.SUCCESS}
EXE = str(Path(sys.executable).parent / "occupy_relion")


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh writable copy of the RELION 3.1 project, with the job directory RELION makes."""
    source = SHARED_RELION / "relion31_project"
    if not source.is_dir():
        pytest.skip(f"shared test data not found: {source}")
    if not os.access(EXE, os.X_OK):
        pytest.skip(f"the console script is not installed in this environment ({EXE})")
    path = copy_tree(source, tmp_path / "project")
    (path / JOB).mkdir(parents=True)
    return path


def hashes(project: Path) -> dict[str, str]:
    """sha256 of every file outside the job directory."""
    found = {}
    for root, _dirs, files in os.walk(project):
        for name in files:
            path = Path(root) / name
            relative = path.relative_to(project).as_posix()
            if not relative.startswith(JOB):
                with open(path, "rb") as handle:  # streamed: some cases have 442 MB (sparse) maps
                    found[relative] = hashlib.file_digest(handle, "sha256").hexdigest()
    return found


def command(*arguments: str, exe: str = EXE, job: str = JOB, address_space_kb: int | None = None) -> str:
    """RELION's shell line for the job (its arguments quoted as the GUI would pass them), under
    ``ulimit -v address_space_kb`` when given (a queue's memory limit)."""
    words = " ".join(f"'{a}'" if " " in a else a for a in arguments)
    threads = "" if "--j" in arguments else " --j 1"
    limit = "" if address_space_kb is None else f"ulimit -v {address_space_kb} && "
    return f"{limit}{exe} --o {job} {words}{threads} >> {job}run.out 2>> {job}run.err"


class Run:
    """One run of the job in a project, as RELION starts it, and what it left."""

    def __init__(self, project: Path, *arguments: str, exe: str = EXE, background: bool = False,
                 address_space_kb: int | None = None):
        self.project = project
        self.job = project / JOB
        self.err_offset = _size(self.job / "run.err")
        self.out_offset = _size(self.job / "run.out")
        line = command(*arguments, exe=exe, address_space_kb=address_space_kb)
        self.process = subprocess.Popen(["/bin/sh", "-c", line], cwd=project, start_new_session=True)
        self.code: int | None = None
        if not background:
            self.wait()

    def wait(self, timeout: float = 300) -> int:
        """The shell's exit code, once the job itself has ended too (a signal to the process group
        ends the shell at once, the job only after its clean-up): until its lock is free."""
        self.code = self.process.wait(timeout=timeout)
        _wait_for(lambda: not _locked(self.job), timeout)
        return self.code

    @property
    def err(self) -> list[str]:
        return _read_from(self.job / "run.err", self.err_offset).splitlines()

    @property
    def out(self) -> str:
        return _read_from(self.job / "run.out", self.out_offset)

    def listing(self) -> set[str]:
        return {p.name for p in self.job.iterdir()}

    def markers(self) -> set[str]:
        return {m for m in (*markers.EXIT_MARKERS, markers.OUTPUT_NODES) if (self.job / m).exists()}


def _locked(job: Path) -> bool:
    """True while a run holds the job directory's lock."""
    import fcntl

    try:
        fd = os.open(job / ".occupy_relion.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this process took
    return False


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _read_from(path: Path, offset: int) -> str:
    if not path.exists():
        return ""
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        return handle.read()


def assert_failed(run: Run, *named: str, before: dict[str, str], extra: set[str] = frozenset()) -> None:
    """The contract of a failed run (see the module docstring); ``named``: what the ERROR line names."""
    assert run.code == 1, (run.code, run.err)
    errors = [line for line in run.err if line.startswith("ERROR:")]
    assert len(errors) == 1, run.err
    assert all(line.startswith(("ERROR:", "WARNING:")) for line in run.err), run.err
    for name in named:
        assert name in errors[0], errors[0]
    assert "Traceback" not in run.out and "Traceback" not in "\n".join(run.err)
    assert run.markers() - set(extra) == {markers.FAILURE}
    assert run.listing() <= LOGS | {markers.FAILURE} | set(extra), run.listing()
    assert hashes(run.project) == before


def assert_succeeded(run: Run, before: dict[str, str]) -> None:
    assert run.code == 0, run.err
    assert run.markers() == {markers.SUCCESS, markers.OUTPUT_NODES}
    assert all(line.startswith("WARNING:") for line in run.err), run.err
    assert OUTPUTS <= run.listing()
    assert not (run.job / ".occupy-staging").exists()
    assert not [n for n in run.listing() if n.startswith(".occupy-tmp-")]
    assert hashes(run.project) == before


# -- maps ---------------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(1024 + 5000)


def _huge_extended_header(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(92)
        handle.write(np.int32(2_000_000_000).tobytes())


def _set_voxel(path: Path, value: float) -> None:
    volume = mrcfile.read(path)
    write_mrc(path, volume, value)


def _nan(path: Path) -> None:
    volume = mrcfile.read(path).copy()
    volume[10, 10, 10] = np.nan
    _write_raw(path, volume)


def _inf(path: Path) -> None:
    volume = mrcfile.read(path).copy()
    volume[10, 10, 10] = np.inf
    _write_raw(path, volume)


def _write_raw(path: Path, volume: np.ndarray) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        write_mrc(path, volume, 3.5)


def _complex(path: Path) -> None:
    volume = mrcfile.read(path)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(volume.astype(np.complex64))
        mrc.voxel_size = 3.5


def _image2d(path: Path) -> None:
    write_mrc(path, np.ones((1, 64, 64), np.float32), 3.5)


def _text(path: Path) -> None:
    path.write_text("not a map\n" * 200)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _missing(path: Path) -> None:
    path.unlink()


def _other_box(path: Path) -> None:
    write_mrc(path, np.random.default_rng(0).normal(size=(48, 48, 48)).astype(np.float32), 3.5)


def _other_pixel(path: Path) -> None:
    _set_voxel(path, 2.0)


def _sparse_maps(project: Path, size: int = 480) -> None:
    """Both class maps as ``size``³ maps of zeros, sparse on disk (442 MB each, taking no space)."""
    for name in (CLASS1, CLASS2):
        with mrcfile.new_mmap(project / name, shape=(size, size, size), mrc_mode=2, overwrite=True) as mrc:
            mrc.voxel_size = 3.5


def _class2(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda project: damage(project / CLASS2)


def _stack(project: Path) -> None:
    write_mrc(project / "Class3D/job003/classes.mrcs", np.ones((4, 64, 64), np.float32), 3.5)


def _sphere(low: float = 0.0, high: float = 1.0) -> np.ndarray:
    z, y, x = np.mgrid[:64, :64, :64] - 32
    return np.where(x * x + y * y + z * z < 20 ** 2, high, low).astype(np.float32)


MASK = "Class3D/job003/mask.mrc"


def _mask(values: Callable[[], np.ndarray]) -> Callable[[Path], None]:
    return lambda project: write_mrc(project / MASK, values(), 3.5)


def _model_star_text(project: Path) -> None:
    (project / MODEL).write_text("this is not a STAR file {\n")


def _model_star_gone(project: Path) -> None:
    (project / MODEL).unlink()


def _model_star_lists_a_missing_map(project: Path) -> None:
    text = (project / MODEL).read_text().replace("run_it010_class002.mrc", "run_it010_class009.mrc")
    (project / MODEL).write_text(text)


def _node_list_is_a_directory(project: Path) -> None:
    (project / JOB / markers.OUTPUT_NODES).mkdir()


def _nothing(project: Path) -> None:  # noqa: ARG001 (a fault in the options alone)
    """No damage: the fault is in the options."""


@dataclass(frozen=True)
class Fault:
    """One bad input: how it breaks the project, the job's arguments, and what its one ERROR line names."""

    damage: Callable[[Path], None]
    arguments: tuple[str, ...]
    named: tuple[str, ...]
    address_space_kb: int | None = None  # run under `ulimit -v` of this many kB
    extra: frozenset[str] = frozenset()  # besides logs and the marker, left in the job directory


PARTS = ("--in_parts", DATA)

FAULTS = {
    # a broken class 2 (class 1 is fine: its outputs must not be left behind)
    "map truncated": Fault(_class2(_truncate), PARTS, (CLASS2, "truncated")),
    "map claims a 2 GB extended header": Fault(_class2(_huge_extended_header), PARTS,
                                               (CLASS2, "extended header of 2000000000 bytes")),
    "map with NaN": Fault(_class2(_nan), PARTS, (CLASS2, "NaN or infinite")),
    "map with Inf": Fault(_class2(_inf), PARTS, (CLASS2, "NaN or infinite")),
    "complex map (mode 4)": Fault(_class2(_complex), PARTS, (CLASS2, "complex float32 map (mode 4")),
    "2D image": Fault(_class2(_image2d), PARTS, (CLASS2, "not a 3D map")),
    "text file": Fault(_class2(_text), PARTS, (CLASS2, "not a readable MRC map")),
    "empty file": Fault(_class2(_empty), PARTS, (CLASS2, "empty file")),
    "missing map": Fault(_class2(_missing), PARTS, (CLASS2, "not found")),
    "other box": Fault(_class2(_other_box), PARTS, (CLASS2, "differs from")),
    "other pixel size": Fault(_class2(_other_pixel), PARTS, (CLASS2, "pixel size")),
    "stack of 2D images": Fault(_stack, ("--in_3dref", "Class3D/job003/classes.mrcs"), ("classes.mrcs", "stack")),
    # masks
    "mask out of [0, 1]": Fault(_mask(lambda: _sphere(-2.0, 3.0)), (*PARTS, "--in_mask", MASK),
                                (MASK, "mask values from -2 to 3")),
    "mask all ones": Fault(_mask(lambda: np.ones((64, 64, 64), np.float32)), (*PARTS, "--in_mask", MASK),
                           (MASK, "1 everywhere")),
    "mask empty": Fault(_mask(lambda: np.zeros((64, 64, 64), np.float32)), (*PARTS, "--in_mask", MASK),
                        (MASK, "empty")),
    "mask of another size": Fault(_mask(lambda: np.ones((32, 32, 32), np.float32)), (*PARTS, "--in_mask", MASK),
                                  (MASK, "mask size")),
    "mask missing": Fault(_nothing, (*PARTS, "--in_mask", MASK), (MASK, "not found")),
    # model.star
    "model.star not STAR": Fault(_model_star_text, PARTS, (MODEL,)),
    "data.star without its model.star": Fault(_model_star_gone, PARTS, ("run_it010",)),
    "model.star lists a missing map": Fault(_model_star_lists_a_missing_map, PARTS, ("class009",)),
    # options
    "negative --lowpass": Fault(_nothing, (*PARTS, "--lowpass", "-3"), ("--lowpass",)),
    "--lowpass 1e6": Fault(_nothing, (*PARTS, "--lowpass", "1e6"), ("--lowpass", "too coarse")),
    "--lowpass not a number": Fault(_nothing, (*PARTS, "--lowpass", "abc"), ("--lowpass",)),
    "unknown --mode": Fault(_nothing, (*PARTS, "--mode", "fast"), ("--mode",)),
    "--amplify below 1": Fault(_nothing, (*PARTS, "--amplify", "0.5"), ("--amplify",)),
    "--pivot out of range": Fault(_nothing, (*PARTS, "--sigmoid", "2", "--pivot", "2"), ("--pivot",)),
    "--j not a number": Fault(_nothing, (*PARTS, "--j", "many"), ("--j",)),
    "--joint neither yes nor no": Fault(_nothing, (*PARTS, "--joint", "perhaps"), ("--joint",)),
    "no input option": Fault(_nothing, (), ("--in_parts",)),
    # the job directory
    "node list is a directory": Fault(_node_list_is_a_directory, PARTS, (markers.OUTPUT_NODES, "is a directory"),
                                      extra=frozenset({markers.OUTPUT_NODES})),
    # memory: 480³ maps need at least 2.2 GB of address space, more than all of a 2 GB `ulimit -v`
    "maps too big for ulimit -v": Fault(_sparse_maps, PARTS, (CLASS1, "need about 3.5 GB (at least 2.2 GB)",
                                                              "ulimit -v"),
                                        address_space_kb=2_000_000),
}


@pytest.mark.parametrize("case", list(FAULTS))
def test_a_fault_fails_cleanly(project, case):
    """Exit 1, FAILURE alone, one ERROR line naming the file or option, no traceback, nothing under a
    final name, inputs unchanged."""
    fault = FAULTS[case]
    fault.damage(project)
    before = hashes(project)
    run = Run(project, *fault.arguments, address_space_kb=fault.address_space_kb)
    assert_failed(run, *fault.named, before=before, extra=fault.extra)


# -- odd inputs that run, saying so ---------------------------------------------------------------------------


def test_trailing_bytes_are_one_warning_line(project):
    with open(project / CLASS2, "ab") as handle:
        handle.write(b"\0" * 4096)
    before = hashes(project)
    run = Run(project, "--in_parts", DATA)
    assert_succeeded(run, before)
    assert len(run.err) == 1 and CLASS2 in run.err[0] and "4096 bytes larger" in run.err[0], run.err


def test_maps_without_a_voxel_size_take_the_model_star_s_and_so_do_the_outputs(project):
    for name in (CLASS1, CLASS2):
        _set_voxel(project / name, 0.0)
    before = hashes(project)
    run = Run(project, "--in_parts", DATA)
    assert_succeeded(run, before)
    assert any("using 3.5 Å" in line for line in run.err)
    written = sorted(run.job.rglob("*.mrc"))
    assert len(written) >= 8  # the class maps, and the region step's masks and occupancy maps
    for path in written:  # the occupancy maps are on the (finer) working grid: the same 224 Å box
        with mrcfile.open(path, header_only=True) as mrc:
            box = (float(mrc.voxel_size.x) * int(mrc.header.nx), float(mrc.voxel_size.z) * int(mrc.header.nz))
            assert box == pytest.approx((64 * 3.5, 64 * 3.5)), path.name
            if int(mrc.header.nx) == 64:
                assert float(mrc.voxel_size.y) == pytest.approx(3.5), path.name


@pytest.mark.parametrize("factor", [1e20, 1e35])
def test_huge_values_do_not_crash(project, factor):
    """Local scale does not depend on the map's unit; the header statistics stay finite."""
    for name in (CLASS1, CLASS2):
        volume = mrcfile.read(project / name).astype(np.float64) * factor
        _write_raw(project / name, volume.astype(np.float32))  # mrcfile's own header rms overflows
    before = hashes(project)
    run = Run(project, "--in_parts", DATA)
    assert_succeeded(run, before)
    with mrcfile.open(run.job / "class001_equalised.mrc") as mrc:
        assert np.isfinite(float(mrc.header.rms)) and np.isfinite(mrc.data).all()




def test_space_in_the_job_directory_is_refused_before_starting(project, tmp_path):
    err = tmp_path / "err.txt"
    done = subprocess.run(f"{EXE} --o 'External/job 099/' --in_parts {DATA} --j 1 2> {err}", shell=True,
                          cwd=project, capture_output=False, stdout=subprocess.DEVNULL, check=False)
    lines = err.read_text().splitlines()
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("ERROR: --o 'External/job 099/'")
    assert not (project / "External/job 099").exists()




def test_an_input_inside_the_job_directory_is_never_replaced(project):
    before = hashes(project)
    assert_succeeded(Run(project, "--in_parts", DATA), before)
    own = project / JOB / "class001_equalised.mrc"
    content = own.read_bytes()
    run = Run(project, "--in_3dref", f"{JOB}class001_equalised.mrc")
    assert run.code == 1 and run.markers() == {markers.FAILURE}
    errors = [line for line in run.err if line.startswith("ERROR:")]
    assert len(errors) == 1 and "inside the job directory" in errors[0]
    assert own.read_bytes() == content  # neither replaced nor cleaned up


# -- re-runs ------------------------------------------------------------------------------------------------


def test_failed_rerun_after_a_success_leaves_only_logs(project):
    before = hashes(project)
    assert_succeeded(Run(project, "--in_parts", DATA), before)
    assert_failed(Run(project, "--in_parts", DATA, "--lowpass", "-3"), "--lowpass", before=before)


def test_rerun_replaces_the_earlier_outputs(project):
    before = hashes(project)
    first = Run(project, "--in_parts", DATA, "--attenuate", "2")
    assert_succeeded(first, before)
    assert (first.job / "class001_attenuated.mrc").exists()
    second = Run(project, "--in_parts", DATA)
    assert_succeeded(second, before)
    assert not (second.job / "class001_attenuated.mrc").exists()  # not this run's: gone with the old run


# -- concurrent runs, abort, signals ------------------------------------------------------------------------


@pytest.fixture
def slow_exe(tmp_path) -> str:
    """The job with an abort check that waits 0.5 s each time (so a test can act while it runs)."""
    path = tmp_path / "slow_occupy"
    path.write_text(f"#!{sys.executable}\n{SLOW_JOB}")
    path.chmod(0o755)
    return str(path)


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def _staged(job: Path) -> bool:
    staging = job / ".occupy-staging"
    return staging.is_dir() and any(p.suffix == ".mrc" for p in staging.iterdir())


def _kept(job: Path) -> set[str]:
    """The job directory's files a second run must leave: all but the logs (RELION's shell appends the
    second run's line to run.err) and the running run's own temporary files (it renames them)."""
    return {p.relative_to(job).as_posix() for p in job.rglob("*")
            if p.name not in ("run.out", "run.err") and not p.name.startswith(".occupy-tmp-")}


def test_second_run_into_a_running_job_fails_at_once_and_touches_nothing(project, slow_exe):
    """While run A works (its maps staged), run B into the same --o ends first, naming A's process, and
    leaves A's markers, staging area and outputs as they were; A then succeeds."""
    before = hashes(project)
    first = Run(project, "--in_parts", DATA, exe=slow_exe, background=True)
    _wait_for(lambda: _staged(first.job))
    holder = (project / JOB / ".occupy_relion.lock").read_text().strip()
    assert "slow_occupy" in Path(f"/proc/{holder}/cmdline").read_text()  # A's job process wrote it
    kept = _kept(first.job)
    second = Run(project, "--in_parts", DATA, "--lowpass", "-3", background=True)
    assert second.process.wait(timeout=60) == 1
    assert first.process.poll() is None  # A still runs: B did not wait for it
    assert kept <= _kept(first.job)  # B removed nothing: A's staged maps are all there
    assert not first.markers()  # and wrote no marker
    assert second.err == [f"ERROR: {JOB.rstrip('/')}: another occupy_relion run (process {holder}) is using "
                          "this job directory; nothing was changed (wait for it, or abort it first)"]
    assert first.wait() == 0
    assert first.markers() == {markers.SUCCESS, markers.OUTPUT_NODES}
    assert OUTPUTS <= first.listing()
    assert hashes(project) == before


def test_abort_leaves_only_logs_and_the_marker(project, slow_exe):
    before = hashes(project)
    run = Run(project, "--in_parts", DATA, exe=slow_exe, background=True)
    _wait_for(lambda: _staged(run.job))
    (run.job / markers.ABORT_NOW).write_text("")
    assert run.wait() == 2
    assert run.markers() == {markers.ABORTED}
    assert run.listing() <= LOGS | {markers.ABORTED}
    assert hashes(project) == before


def test_sigterm_mid_write_is_an_abort(project, slow_exe):
    before = hashes(project)
    run = Run(project, "--in_parts", DATA, exe=slow_exe, background=True)
    _wait_for(lambda: _staged(run.job))
    os.killpg(run.process.pid, signal.SIGTERM)
    run.wait()  # the shell dies of the signal; the job ends as Aborted
    assert run.markers() == {markers.ABORTED}
    assert run.listing() <= LOGS | {markers.ABORTED}
    assert "Traceback" not in "\n".join(run.err)
    assert hashes(project) == before


def test_sigkill_mid_write_leaves_no_final_output_and_a_rerun_cleans_up(project, slow_exe):
    before = hashes(project)
    run = Run(project, "--in_parts", DATA, exe=slow_exe, background=True)
    _wait_for(lambda: _staged(run.job))
    os.killpg(run.process.pid, signal.SIGKILL)
    run.wait()
    assert not run.markers() and not (run.listing() & OUTPUTS)
    again = Run(project, "--in_parts", DATA)
    assert_succeeded(again, before)
    assert not [n for n in again.listing() if n.startswith(".occupy") and n not in (".occupy_relion.lock",
                                                                                      ".occupy-outputs")]


_OUT_OF_MEMORY_JOB = """
import sys
import occupy_relion.job.grid as grid
from occupy_relion.cli import main

real = grid.read_map

def read_map(path):  # memory runs out while class 2 is read (class 1 is staged by then)
    if str(path).endswith("class002.mrc"):
        raise MemoryError()
    return real(path)

grid.read_map = read_map
sys.exit(main(sys.argv[1:]))
"""


def test_running_out_of_memory_names_the_map_and_the_estimate(project, tmp_path):
    """A MemoryError in the middle of a run (the estimate fitted, the machine did not): one ERROR line
    with the map and the estimate said before the start, nothing under a final name."""
    exe = tmp_path / "oom_occupy"
    exe.write_text(f"#!{sys.executable}\n{_OUT_OF_MEMORY_JOB}")
    exe.chmod(0o755)
    before = hashes(project)
    run = Run(project, *PARTS, exe=str(exe))
    assert_failed(run, f"ERROR: {CLASS1}: out of memory: the 64x64x64 maps need about 8 MB", before=before)
    assert " memory: about 8 MB for 64x64x64 maps" in run.out


# -- read-only and full disks (a small tmpfs: root only) ------------------------------------------------------


@pytest.fixture
def small_disk(project):
    """Mount a tmpfs over the project's External/ (root only); yields a function that sets its size."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    target = project / "External"
    for child in target.iterdir():
        subprocess.run(["rm", "-rf", str(child)], check=True)
    mounted = []

    def mount(size: int, read_only: bool = False) -> Path:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(target)
        (project / JOB).mkdir(parents=True)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
        return target

    yield mount
    for path in mounted:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)  # busy: detach it all the same


def test_read_only_job_directory(project, small_disk, tmp_path):
    small_disk(1 << 20, read_only=True)
    before = hashes(project)
    err = tmp_path / "err.txt"
    done = subprocess.run(f"{EXE} --o {JOB} --in_parts {DATA} --j 1 > /dev/null 2> {err}", shell=True,
                          cwd=project, check=False)
    lines = err.read_text().splitlines()
    assert done.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith("ERROR: External/job099") and "cannot write" in lines[0]
    assert hashes(project) == before


_PAGE = 4096
_MAP_PAGES = -(-1049600 // _PAGE)  # a 64³ float32 map on tmpfs


def test_disk_full_while_writing_the_maps(project, small_disk):
    """The class maps are written in the background while the region masks are made, so the map that
    finds the disk full is a class's or a region's: either way one ERROR line names it."""
    disk = small_disk(3 * _MAP_PAGES * _PAGE + 8 * _PAGE)  # room for three of the six maps
    before = hashes(project)
    run = Run(project, "--in_parts", DATA)
    assert_failed(run, "no space left on device", "External/job099/", before=before)
    assert re.search(r"External/job099/(class00\d_\w+|region\d{3}_mask|variable_mask)\.mrc: no space", run.err[-1])
    assert ".occupy-staging" not in run.err[-1]
    used = os.statvfs(disk)
    assert (used.f_blocks - used.f_bfree) * used.f_frsize < 4 * 65536  # what the run wrote is freed


def _fill(disk: Path) -> None:
    """Fill ``disk`` to the last page with a file beside the job directory."""
    with open(disk / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * _PAGE)
        except OSError:
            pass


def test_a_disk_full_from_the_start_still_gets_the_failure_marker(project, small_disk, tmp_path):
    """Not even run.out and run.err can grow: the job still ends Failed (an empty marker needs no
    space), with exit code 1 and no traceback; with stderr elsewhere its one ERROR line names the file."""
    disk = small_disk(16 * _PAGE)
    _fill(disk)
    before = hashes(project)
    run = Run(project, "--in_parts", DATA)
    assert run.code == 1 and run.markers() == {markers.FAILURE}
    assert run.listing() <= LOGS | {markers.FAILURE}
    assert "Traceback" not in run.out + "\n".join(run.err)
    err = tmp_path / "err.txt"
    done = subprocess.run(f"{EXE} --o {JOB} --in_parts {DATA} --j 1 >> {JOB}run.out 2> {err}", shell=True,
                          cwd=project, check=False)
    lines = err.read_text().splitlines()
    assert done.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith(f"ERROR: {JOB}class001_scale.mrc: no space left on device"), lines
    assert run.listing() <= LOGS | {markers.FAILURE}
    assert hashes(project) == before


def _pages_without_the_report(job: Path) -> int:
    """tmpfs pages the outputs of a finished run take, leaving out logfile.pdf and occupy.cxc."""
    return sum(-(-path.stat().st_size // _PAGE) for path in job.rglob("*")
               if path.is_file() and path.name not in ("logfile.pdf", "occupy.cxc"))


def test_disk_full_for_the_report_is_a_warning(project, small_disk):
    (project / JOB).mkdir(parents=True)
    assert Run(project, "--in_parts", DATA).code == 0  # on the real disk: what a run writes besides the report
    pages = _pages_without_the_report(project / JOB)
    small_disk((pages + 24) * _PAGE)  # the maps, masks and tables fit, the 180 KB PDF does not
    before = hashes(project)
    run = Run(project, "--in_parts", DATA)
    assert run.code == 0, run.err
    assert run.markers() == {markers.SUCCESS, markers.OUTPUT_NODES}
    assert len(run.err) == 1 and run.err[0].startswith("WARNING: report not written"), run.err
    assert not (run.job / "logfile.pdf").exists()
    assert hashes(project) == before


def test_the_unit_of_the_density_does_not_change_the_result(project, tmp_path):
    """Maps × 2^110 (~1e33): scale maps bit for bit the same, modified maps exactly 2^110 times as large."""
    before = hashes(project)
    assert_succeeded(Run(project, "--in_parts", DATA), before)
    plain = {name: mrcfile.read(project / JOB / name).copy() for name in ("class001_scale.mrc",
                                                                          "class001_equalised.mrc")}
    factor = 2.0 ** 110
    for name in (CLASS1, CLASS2):
        _write_raw(project / name, (mrcfile.read(project / name).astype(np.float64) * factor).astype(np.float32))
    before = hashes(project)
    assert_succeeded(Run(project, "--in_parts", DATA), before)
    assert np.array_equal(mrcfile.read(project / JOB / "class001_scale.mrc"), plain["class001_scale.mrc"])
    assert np.array_equal(mrcfile.read(project / JOB / "class001_equalised.mrc"),
                          (plain["class001_equalised.mrc"].astype(np.float64) * factor).astype(np.float32))

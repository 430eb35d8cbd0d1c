"""Shared fixtures: copies of the real RELION projects, small synthetic projects, the RELION markers.

Tests marked ``@pytest.mark.relion`` need Debian's RELION 3.1.3 programs (and the installed
``occupy_relion`` console script): they are skipped cleanly when ``relion_refine`` is not on PATH.
Tests marked ``@pytest.mark.relion5`` need the RELION 5.0.1 programs of ``shared/relion5/bin`` and the
run-time libraries of Debian's RELION package: they are skipped cleanly when that ``relion_refine``
is missing or does not run as 5.0.  They get RELION 5 first on PATH only through :func:`relion5_env`.
Shared files are always copied to ``tmp_path`` first: inputs are never touched.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
from pathlib import Path

import mrcfile
import numpy as np
import pytest


def _shared_dir() -> Path:
    """The project's shared/ folder: beside the repository (as CI lays it out), else the workplace's."""
    for candidate in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        if candidate.is_dir():
            return candidate
    return Path(__file__).resolve().parents[2] / "shared"


SHARED = _shared_dir()
SHARED_RELION = SHARED / "relion"
SHARED_MAPS = SHARED / "maps"
#: RELION 5.0.1 programs built from the public source (shared/relion5/README.md)
RELION5_BIN = SHARED / "relion5" / "bin"


def relion_available() -> bool:
    """True when the RELION programs the end-to-end tests run are installed."""
    return shutil.which("relion_refine") is not None


@functools.cache
def relion5_version() -> str | None:
    """The version ``shared/relion5/bin/relion_refine --version`` reports, or None if it cannot run there."""
    program = RELION5_BIN / "relion_refine"
    if not os.access(program, os.X_OK):
        return None
    try:
        done = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():  # "RELION version: 5.0.1-commit-d476e6"
        if line.startswith("RELION version:"):
            return line.split(":", 1)[1].strip()
    return None  # e.g. missing run-time libraries: the loader's error, no version line


def relion5_available() -> bool:
    """True when the RELION 5.0 programs run (their libraries come with Debian's relion package)."""
    version = relion5_version()
    return version is not None and version.startswith("5.0")


def pytest_collection_modifyitems(config, items):
    """Skip `relion` / `relion5` tests when that RELION is absent (with a reason, never an error)."""
    skips = {}
    if not relion_available():
        skips["relion"] = pytest.mark.skip(reason="RELION programs not on PATH (relion_refine not found)")
    if not relion5_available():
        skips["relion5"] = pytest.mark.skip(
            reason=f"RELION 5.0 programs not runnable ({RELION5_BIN / 'relion_refine'}: "
                   f"{relion5_version() or 'missing, or its libraries (apt-get install relion) are'})")
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)


def relion5_env() -> dict[str, str]:
    """The environment for RELION 5 commands: its bin/ first on PATH (the names are 3.1's too)."""
    return dict(os.environ, PATH=f"{RELION5_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


@pytest.fixture(scope="session")
def occupy_exe() -> str:
    """The installed console script, by absolute path (RELION runs fn_exe through /bin/sh)."""
    exe = shutil.which("occupy_relion")
    if exe is None:
        pytest.skip("the occupy_relion console script is not installed (pip install .)")
    return str(Path(exe).absolute())


def copy_tree(source: Path, target: Path) -> Path:
    """Copy a shared directory and make the copy writable (the shared files are read-only)."""
    shutil.copytree(source, target)
    for root, dirs, files in os.walk(target):
        for name in dirs + files:
            path = Path(root) / name
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    Path(target).chmod(Path(target).stat().st_mode | stat.S_IWUSR)
    return target


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared test data not found: {path}")
    return path


@pytest.fixture
def shared_relion() -> Path:
    """The read-only real RELION files (only for reading)."""
    return _require(SHARED_RELION)


@pytest.fixture
def relion31_copy(tmp_path) -> Path:
    """A writable copy of the RELION 3.1.3 project (Class3D job003, Refine3D job010)."""
    return copy_tree(_require(SHARED_RELION / "relion31_project"), tmp_path / "relion31_project")


@pytest.fixture
def relion50_copy(tmp_path) -> Path:
    """A writable copy of the RELION 5.0.1 project (Class3D job003)."""
    return copy_tree(_require(SHARED_RELION / "relion50_project"), tmp_path / "relion50_project")


@pytest.fixture
def in_project(monkeypatch):
    """Change the working directory into a project (RELION runs External jobs from there)."""

    def enter(project: Path) -> Path:
        monkeypatch.chdir(project)
        return project

    return enter


def write_mrc(path: Path, data: np.ndarray, voxel_size: float = 2.0, origin=(0.0, 0.0, 0.0),
              start=(0, 0, 0)) -> Path:
    """A float32 MRC map (x fastest) for tests: the one test writer of maps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, dtype=np.float32))
        mrc.voxel_size = voxel_size
        mrc.header.origin = origin
        mrc.header.nxstart, mrc.header.nystart, mrc.header.nzstart = start
    return path


def synthetic_classes(shape=(40, 40, 40), pixel_size=2.0, seed=0) -> list[np.ndarray]:
    """Two small noisy class maps: all domains present, and the third domain at 30 %."""
    from occupy_relion.synthetic import noisy_map

    full, _ = noisy_map(shape, pixel_size, noise=0.3, occupancy=(1.0, 1.0, 1.0), seed=seed)
    partial, _ = noisy_map(shape, pixel_size, noise=0.3, occupancy=(1.0, 1.0, 0.3), seed=seed)
    return [full, partial]


MODEL_TEMPLATE = """
# version 30001

data_model_general

_rlnReferenceDimensionality                        3
_rlnDataDimensionality                             2
_rlnOriginalImageSize                             {box}
_rlnCurrentResolution                      {resolution:f}
_rlnPixelSize                               {pixel_size:f}
_rlnNrClasses                                      {count}
_rlnNrBodies                                       1

# version 30001

data_model_classes

loop_
_rlnReferenceImage #1
_rlnClassDistribution #2
_rlnAccuracyRotations #3
_rlnAccuracyTranslationsAngst #4
_rlnEstimatedResolution #5
_rlnOverallFourierCompleteness #6
{rows}
"""


def write_model(path: Path, maps: list[str], distributions: list[float], pixel_size: float, box: int,
                resolution: float = 12.0) -> Path:
    """A minimal 3D model.star listing ``maps`` (paths relative to the project)."""
    rows = "\n".join(f"{m} {d:f} 5.000000 1.000000 {resolution:f} 0.990000" for m, d in zip(maps, distributions))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MODEL_TEMPLATE.format(box=box, resolution=resolution, pixel_size=pixel_size,
                                          count=len(maps), rows=rows))
    return path


@pytest.fixture(scope="session")
def synthetic_maps() -> list[np.ndarray]:
    """The two synthetic class maps (computed once per session)."""
    return synthetic_classes()


@pytest.fixture
def synthetic_project(tmp_path, synthetic_maps) -> Path:
    """A project with Class3D/job005/run_it020_{model,data}.star and two 40³ class maps at 2 Å."""
    project = tmp_path / "project"
    job = project / "Class3D" / "job005"
    names = []
    for number, volume in enumerate(synthetic_maps, start=1):
        name = f"Class3D/job005/run_it020_class{number:03d}.mrc"
        write_mrc(project / name, volume, 2.0)
        names.append(name)
    write_model(job / "run_it020_model.star", names, [0.6, 0.4], 2.0, 40)
    (job / "run_it020_data.star").write_text("data_particles\n\nloop_\n_rlnClassNumber #1\n1\n2\n")
    return project


#: a job whose every abort check first waits (so a test has time to stop it): ``python -c SLOW_JOB ARGS...``
SLOW_JOB = """
import sys, time
from occupy_relion.cli import main
from occupy_relion.relion import markers

def slow_check(job_dir):
    time.sleep(0.5)
    markers.check_abort(job_dir)

sys.exit(main(sys.argv[1:], abort_check=slow_check))
"""


def slow_job_executable(path: Path) -> Path:
    """An executable that runs the job with :data:`SLOW_JOB`'s slow abort check (for RELION's fn_exe)."""
    import sys

    path.write_text(f"#!{sys.executable}\n{SLOW_JOB}")
    path.chmod(0o755)
    return path


def process_class(volume: np.ndarray, pixel_size: float, number: int = 1, *, job: str = "External/job012/",
                  input_path: str | None = None, distribution: float | None = 0.5, resolution: float | None = 8.0,
                  modify=None, seconds: float = 0.0):
    """One class through the job's own pipeline (``job/classes.py``): its ProcessedClass (maps and result)."""
    from dataclasses import replace

    from occupy_relion.core import ModifyParameters, ScaleParameters
    from occupy_relion.job.classes import ClassWork, finish_class, measure_class, normalise_class
    from occupy_relion.job.outputs import JobDirectory, class_outputs
    from occupy_relion.relion.inputs import ClassInput

    modify = modify or ModifyParameters()
    cls = ClassInput(number, input_path or f"Class3D/job008/run_it025_class{number:03d}.mrc", distribution, resolution)
    work = ClassWork(pixel_size, ScaleParameters(), modify, None, 1, lambda: None)
    estimate = normalise_class(cls, measure_class(cls, volume, None, work), None, 1)
    processed = finish_class(cls, volume, estimate, work, class_outputs(JobDirectory.of(job), number, modify))
    return replace(processed, result=replace(processed.result, seconds=seconds))


@pytest.fixture(scope="session")
def class_result(synthetic_maps):
    """A real ClassResult (class 1 of the synthetic project), to vary with dataclasses.replace."""
    return process_class(synthetic_maps[0], 2.0).result

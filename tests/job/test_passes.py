"""Classes in parallel within --j (job/passes.py): the same maps as one at a time, logged in class order,
stopped together."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import occupy_relion.report as report_module
from occupy_relion.cli import main
from occupy_relion.errors import JobAborted
from occupy_relion.job.memory import MemoryEstimate
from occupy_relion.job.passes import classes_at_once

JOB = "External/job012/"
DATA = "Class3D/job005/run_it020_data.star"


@pytest.fixture(autouse=True)
def no_report(monkeypatch):
    monkeypatch.setattr(report_module, "write_report", lambda *args, **kwargs: [])


def _maps(job: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(job.glob("class*.mrc"))}


def _estimate(needed: int, available: int | None) -> MemoryEstimate:
    return MemoryEstimate((40, 40, 40), "c.mrc", needed, available)


def test_classes_at_once_stays_within_threads_classes_and_memory():
    assert classes_at_once(2, 2, _estimate(100, 10_000)) == 2
    assert classes_at_once(4, 3, _estimate(100, 10_000)) == 3  # never more than there are classes
    assert classes_at_once(2, 5, _estimate(100, 10_000)) == 2  # never more than --j
    assert classes_at_once(8, 8, _estimate(100, 350)) == 3  # as many as the memory holds
    assert classes_at_once(8, 8, _estimate(100, 50)) == 1  # at least one
    assert classes_at_once(2, 2, _estimate(100, None)) == 2  # unknown memory: by threads
    assert classes_at_once(1, 4, _estimate(100, 10_000)) == 1


@pytest.mark.parametrize("joint", [False, True])
def test_two_at_a_time_writes_the_same_maps(synthetic_project, in_project, capsys, joint):
    in_project(synthetic_project)
    flags = ["--joint"] if joint else []
    assert main(["--o", "External/job001/", "--in_parts", DATA, *flags, "--j", "1"]) == 0
    one = capsys.readouterr().out
    assert main(["--o", "External/job002/", "--in_parts", DATA, *flags, "--j", "2"]) == 0
    two = capsys.readouterr().out
    assert " classes: 2 at a time, 1 thread each" in two and " at a time" not in one
    first, second = _maps(synthetic_project / "External/job001"), _maps(synthetic_project / "External/job002")
    assert len(first) >= 6 and first == second
    assert two.index("class 001 done") < two.index("class 002 done")  # logged in class order
    assert " profile: read " in two and " estimate " in two and " write " in two


def test_an_abort_stops_every_class_and_waits_for_them(synthetic_project, in_project, capsys):
    in_project(synthetic_project)
    calls = []
    lock = threading.Lock()

    def check(job_dir):
        with lock:
            calls.append(threading.current_thread().name)
            if len(calls) == 6:
                raise JobAborted("RELION_JOB_ABORT_NOW found")

    before = {t.name for t in threading.enumerate()}
    assert main(["--o", JOB, "--in_parts", DATA, "--j", "2"], abort_check=check) == 2
    err = capsys.readouterr().err
    assert "aborted" in err
    assert any(name.startswith("occupy-class") for name in calls)  # the classes ran in their threads
    assert {t.name for t in threading.enumerate()} - before == set()  # none left running
    job = synthetic_project / JOB
    assert not list(job.glob("class*.mrc")) and not (job / ".occupy-staging").exists()

"""RELION's marker files in the job directory: how a job says it ended, and how it is told to stop.

RELION_JOB_EXIT_SUCCESS / _FAILURE / _ABORTED are written by the job (SUCCESS last of all).
RELION_JOB_ABORT_NOW is written by the GUI's Abort or ``relion_schemer --abort``; RELION's own
programs only test for it (pipeline_control.cpp), and the pipeliner deletes it before every
(re)start.  So one present when the job starts was pressed after the launch, while Python was
still starting: it is kept and honoured by the first abort check, never deleted at start.  At start
only the exit markers and the node list of an earlier run go, so a re-run ("Continue") never shows
an old ending; once the job has stopped for an abort the request is deleted.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..atomic import TEMP_PREFIX
from ..errors import JobAborted

SUCCESS = "RELION_JOB_EXIT_SUCCESS"
FAILURE = "RELION_JOB_EXIT_FAILURE"
ABORTED = "RELION_JOB_EXIT_ABORTED"
ABORT_NOW = "RELION_JOB_ABORT_NOW"
OUTPUT_NODES = "RELION_OUTPUT_NODES.star"

EXIT_MARKERS = (SUCCESS, FAILURE, ABORTED)


def _touch(path: Path) -> None:
    with open(path, "w", encoding="utf-8"):
        pass


def clear_stale(job_dir: str | os.PathLike) -> list[str]:
    """Remove the exit markers and the node list of an earlier run (never ABORT_NOW); return what went."""
    job_dir = Path(job_dir)
    removed = []
    for name in (*EXIT_MARKERS, OUTPUT_NODES):
        path = job_dir / name
        if path.exists():
            path.unlink()
            removed.append(name)
    for temp in job_dir.glob(TEMP_PREFIX + "*"):  # left by a hard kill
        temp.unlink(missing_ok=True)
    return removed


def abort_requested(job_dir: str | os.PathLike) -> bool:
    """True when RELION asked the job to stop."""
    return (Path(job_dir) / ABORT_NOW).exists()


def check_abort(job_dir: str | os.PathLike) -> None:
    """Raise :class:`JobAborted` when RELION_JOB_ABORT_NOW exists."""
    if abort_requested(job_dir):
        raise JobAborted(f"{Path(job_dir) / ABORT_NOW} found")


def mark_success(job_dir: str | os.PathLike) -> None:
    """Write RELION_JOB_EXIT_SUCCESS: call last, after every output and the node list."""
    _touch(Path(job_dir) / SUCCESS)


def mark_failure(job_dir: str | os.PathLike) -> bool:
    """Write RELION_JOB_EXIT_FAILURE and remove any node list; False if the directory is not writable."""
    job_dir = Path(job_dir)
    try:
        if not (job_dir / OUTPUT_NODES).is_dir():  # a directory there is named in the error line already
            (job_dir / OUTPUT_NODES).unlink(missing_ok=True)
        _touch(job_dir / FAILURE)
    except OSError:
        return False
    return True


def mark_aborted(job_dir: str | os.PathLike) -> None:
    """Delete RELION_JOB_ABORT_NOW and the node list, then write RELION_JOB_EXIT_ABORTED."""
    job_dir = Path(job_dir)
    (job_dir / ABORT_NOW).unlink(missing_ok=True)
    (job_dir / OUTPUT_NODES).unlink(missing_ok=True)
    _touch(job_dir / ABORTED)

"""One run at a time per job directory: an exclusive lock on a hidden file in it.

RELION never runs a job twice at once, but a person can (a "Continue" while it still runs, the same
``--o`` typed in a shell, a Scheme and a GUI).  Before anything in the directory is touched, the run
takes ``fcntl.lockf`` on ``.occupy_relion.lock``; a second run finds it held and stops at once,
naming the process that holds it, without touching a marker, a log or an output.  The kernel drops
the lock when its process ends, however it ends (a kill too), so a stale lock never blocks a re-run.
The file stays (deleting a lock file lets two runs lock two different files).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import InputError

LOCK_NAME = ".occupy_relion.lock"


class JobLock:
    """The held lock of a job directory; :meth:`release` (or the process's end) lets it go."""

    def __init__(self, job_dir: Path, handle: int):
        self.job_dir = job_dir
        self._fd: int | None = handle

    @classmethod
    def take(cls, job_dir: str | os.PathLike) -> JobLock:
        """Lock ``job_dir`` (which must exist); InputError naming the holder when another run has it."""
        job_dir = Path(job_dir)
        path = job_dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise InputError(f"{job_dir}: cannot write in the job directory ({error.strerror or error})") from None
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise InputError(f"{job_dir}: another occupy_relion run ({holder}) is using this job directory; "
                             "nothing was changed (wait for it, or abort it first)") from None
        try:  # who holds it, for a second run's message
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # a full disk: the lock holds all the same, its holder is then not named
            pass
        return cls(job_dir, fd)

    def release(self) -> None:
        """Let the lock go (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _holder(fd: int) -> str:
    """'process N' as the holder wrote it in the file, or a vaguer phrase."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"process {text}" if text.isdigit() else "another process"

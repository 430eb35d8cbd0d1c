"""Atomic file writing: a reader sees the old file or the finished new one, never half a file.

Every output of the job goes through :func:`atomic_path`: written to a hidden temporary file in the
same directory, flushed to disk, given the permissions a new file gets under the umask, then moved
onto its name with ``os.replace``.  An OSError that names no file (a full disk) is raised again
naming the target.  An error, an abort or a kill leaves no partial file; leftovers of a
hard kill carry :data:`TEMP_PREFIX`, and the job removes them when it starts again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_PREFIX = ".occupy-tmp-"


def default_file_mode() -> int:
    """Permissions of a newly created file under the current umask (temporary files start as 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; move it onto ``target`` when the block succeeds.

    ``suffix`` (default: the target's) lets writers that choose a format by file name work.  Nest the
    blocks to publish several files only when all of them are complete.
    """
    target = Path(target)
    directory = target.parent if str(target.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=target.suffix if suffix is None else suffix,
                                dir=directory)
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(temporary, default_file_mode())
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        if error.filename is None or Path(error.filename) == temporary:  # name the file it was for
            raise OSError(error.errno, error.strerror or str(error), str(target)) from None
        raise
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(target)

"""Exceptions the job turns into RELION's end states (Failed, Aborted)."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A bad input: the message is one line that names the file (or option) and the problem."""


class JobAborted(Exception):
    """The user asked the job to stop (RELION_JOB_ABORT_NOW, Ctrl-C)."""


def first_line(error: BaseException) -> str:
    """An error as one line: the first line of its message (an OSError names its file), else its type."""
    text = str(error).strip()
    if isinstance(error, OSError) and error.filename:
        text = f"{error.filename}: {error.strerror or text}"
    lines = text.splitlines()
    return " ".join(lines[0].split()) if lines else type(error).__name__


def check_input_file(path: Path, what: str) -> None:
    """InputError naming ``path`` when it is missing, a directory or empty (``what``: e.g. "a map")."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not {what}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")

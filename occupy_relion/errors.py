"""Exceptions the job turns into RELION's end states (Failed, Aborted)."""

from __future__ import annotations


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

"""Exceptions the job turns into RELION's end states (Failed, Aborted)."""

from __future__ import annotations


class InputError(Exception):
    """A bad input: the message is one line that names the file (or option) and the problem."""


class JobAborted(Exception):
    """The user asked the job to stop (RELION_JOB_ABORT_NOW, Ctrl-C)."""

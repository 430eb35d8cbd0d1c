"""The job driver: one run of the RELION External job, step by step (``run.py`` reads as the steps).

``options.py`` (what was asked), ``log.py`` (run.out / run.err), ``grid.py`` (the maps' common grid
and reading them), ``classes.py`` (the pure per-class pipeline), ``passes.py`` (the classes one by one,
or all against a joint reference), ``outputs.py`` (everything written).
"""

from __future__ import annotations

from .options import JobOptions, command_line, program_version
from .run import EXIT_ABORTED, EXIT_FAILED, EXIT_OK, AbortCheck, fail_early, run_job

__all__ = ["EXIT_ABORTED", "EXIT_FAILED", "EXIT_OK", "AbortCheck", "JobOptions", "command_line", "fail_early",
           "program_version", "run_job"]

"""The RELION External job: inputs → local scale of every class → maps, occupancy.star, report, nodes.

RELION runs us from the project directory and appends stdout to ``run.out`` and stderr to
``run.err``; every path below is relative to the project directory.  The job ends with exactly one
marker (docs/relion.md §2): RELION_JOB_EXIT_SUCCESS (written last, after RELION_OUTPUT_NODES.star),
_FAILURE (a bad input: one line on stderr naming the file and the problem, no node list) or
_ABORTED (RELION_JOB_ABORT_NOW seen between classes or inside the core's long steps).

The abort check is passed in (``abort_check``): RELION's marker file by default; a test can pass
one that waits, or that stops the job at a chosen step.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from ..core import ParameterError, ScaleParameters
from ..errors import InputError, JobAborted, first_line
from ..relion import markers
from ..relion.inputs import ClassInput, Inputs, load_inputs
from ..relion.version import detect_version
from .classes import ClassWork, listed_reason
from .grid import check_grid, read_mask
from .log import JobLog
from .options import JobOptions, option_error
from .outputs import JobDirectory, describe_run, prepare, write_nodes, write_occupancy, write_report
from .passes import jointly, one_by_one
from .regions import region_step

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ABORTED = 2

#: the abort check: given the job directory, raises JobAborted when the job is to stop
AbortCheck = Callable[[Path], None]


def _run(options: JobOptions, job: JobDirectory, log: JobLog, check: Callable[[], None]) -> int:
    """The steps of a run, in order."""
    started = time.perf_counter()
    prepare(job)
    log.keep_in(job.path)
    log.start(options)
    scale, modify = options.scale_parameters(), options.modify_parameters()
    version = detect_version(".", options.relion_version)
    log.version(version)
    inputs = load_inputs(options.model, options.in_parts, options.in_3dref)
    log.inputs(inputs)
    active, skipped = _listed_classes(inputs, log)
    grid = check_grid(inputs, active, log.warn)
    log.classes(grid, active)
    mask = read_mask(options.in_mask, grid)
    if mask is not None:
        log.say(f" solvent mask: {options.in_mask}")
    resolved = _resolved(scale, grid.pixel_size)
    log.settings(options, resolved)
    work = ClassWork(grid.pixel_size, scale, modify, mask, options.threads, check)

    results, empty, reference, measurements = (jointly if options.joint else one_by_one)(job, active, work, log)
    if not results:
        raise _nothing_to_analyse(inputs)
    skipped = sorted(skipped + empty)
    check()
    regions = region_step(job, options, inputs.kind, measurements, grid, results[0].settings.lowpass_angstrom,
                          check, log)
    del measurements

    run = describe_run(options, job, inputs, version, grid.pixel_size, resolved, reference)
    summary = write_occupancy(job, options, run, inputs, results, skipped, regions)
    log.wrote([summary])
    report = write_report(job, run, results, log.warn, regions)
    log.wrote(report)
    check()
    write_nodes(job, results, summary, report, version, regions)
    markers.mark_success(job.path)
    log.done(len(results), skipped, time.perf_counter() - started)
    return EXIT_OK


def _listed_classes(inputs: Inputs, log: JobLog) -> tuple[list[ClassInput], list[int]]:
    """The classes to analyse, and the numbers of those the model.star already shows empty."""
    active, skipped = [], []
    for cls in inputs.classes:
        reason = listed_reason(cls)
        if reason:
            log.warn(f"class {cls.number} ({cls.map_path}): {reason}; skipped")
            skipped.append(cls.number)
        else:
            active.append(cls)
    if not active:
        raise _nothing_to_analyse(inputs)
    return active, skipped


def _nothing_to_analyse(inputs: Inputs) -> InputError:
    return InputError(f"{inputs.model_path or inputs.source}: every class is empty, nothing to analyse")


def _resolved(parameters: ScaleParameters, pixel_size: float) -> ScaleParameters:
    """The estimate's parameters with every default filled in; InputError naming the option."""
    try:
        return parameters.resolved(pixel_size)
    except ParameterError as error:
        raise option_error(error) from None


# -- the job's end states ---------------------------------------------------------------------------


def run_job(options: JobOptions, out: TextIO | None = None, err: TextIO | None = None, *,
            abort_check: AbortCheck = markers.check_abort) -> int:
    """Run the job; return the exit code (0 success, 1 failed, 2 aborted).  Never raises for bad input."""
    log = JobLog(out, err)
    try:
        return _ended(options, JobDirectory.of(options.output_dir), log, abort_check)
    finally:
        log.close()


def _ended(options: JobOptions, job: JobDirectory, log: JobLog, abort_check: AbortCheck) -> int:
    """Run, and turn every way a run can end into RELION's marker and one line (run.err)."""
    try:
        return _run(options, job, log, lambda: abort_check(job.path))
    except (JobAborted, KeyboardInterrupt) as error:
        return _aborted(job, log, str(error) or "interrupted")
    except (InputError, OSError) as error:
        log.error(f"ERROR: {first_line(error)}")
    except MemoryError:
        log.error("ERROR: out of memory (try fewer threads, or a larger --lowpass)")
    except Exception as error:  # a bug: say so in one line, then the traceback for the report
        log.error(f"ERROR: unexpected {type(error).__name__}: {first_line(error)}")
        log.error(traceback.format_exc().rstrip())
    return _failed(job, log)


def _aborted(job: JobDirectory, log: JobLog, reason: str) -> int:
    """RELION_JOB_EXIT_ABORTED, and why."""
    try:
        markers.mark_aborted(job.path)
    except OSError:
        pass
    log.say(f" aborted ({reason}); wrote {markers.ABORTED}")
    log.error(f"occupy_relion: aborted ({reason})")
    return EXIT_ABORTED


def _failed(job: JobDirectory, log: JobLog) -> int:
    """RELION_JOB_EXIT_FAILURE (the error line is written already)."""
    if not markers.mark_failure(job.path):
        log.error(f"ERROR: could not write {markers.FAILURE} in {job.path}")
    log.say(" failed (see run.err)")
    return EXIT_FAILED


def fail_early(output_dir: str | None, message: str, err: TextIO | None = None) -> int:
    """A failure before the job could start (bad command line): error line, and FAILURE if we can."""
    log = JobLog(err=err)
    directory = Path(output_dir) if output_dir else None
    if directory is not None and directory.is_dir():
        log.keep_in(directory)
    log.error(f"ERROR: {' '.join(message.split())}")
    log.close()
    if directory is not None and directory.is_dir():
        try:
            markers.clear_stale(directory)
        except OSError:
            pass
        markers.mark_failure(directory)
    return EXIT_FAILED

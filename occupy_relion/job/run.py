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

import errno
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ..core import ParameterError, ScaleParameters
from ..errors import InputError, JobAborted, first_line
from ..relion import markers
from ..relion.inputs import ClassInput, Inputs, load_inputs
from ..relion.lock import JobLock
from ..relion.version import detect_version
from ..report.background import BackgroundReport, PagePlan
from ..report.background import start as start_background_report
from ..result import ClassResult, RegionsResult, RunDescription
from .checks import InputInJobDirectory, check_inputs_outside, check_lowpass, job_name_problem
from .classes import ClassWork, listed_reason
from .grid import check_grid, map_unit, read_mask
from .log import JobLog, warnings_as_lines
from .memory import check_fits, memory_needed, out_of_memory_line
from .options import JobOptions, option_error
from .outputs import (
    JobDirectory,
    MapWriter,
    describe_run,
    discard,
    prepare,
    publish,
    write_nodes,
    write_occupancy,
    write_report,
)
from .passes import classes_at_once, jointly, one_by_one
from .regions import region_step, skip_reason

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ABORTED = 2

#: the abort check: given the job directory, raises JobAborted when the job is to stop
AbortCheck = Callable[[Path], None]


def _run(options: JobOptions, job: JobDirectory, log: JobLog, check: Callable[[], None]) -> int:
    """The steps of a run, in order (the job directory exists and this run holds its lock)."""
    started = time.perf_counter()
    prepare(job)
    log.start(options)
    scale, modify = options.scale_parameters(), options.modify_parameters()
    version = detect_version(".", options.relion_version)
    log.version(version)
    inputs = load_inputs(options.model, options.in_parts, options.in_3dref)
    check_inputs_outside(job.path, options, inputs)
    log.inputs(inputs)
    active, skipped = _listed_classes(inputs, log)
    grid = check_grid(inputs, active, log.warn)
    log.classes(grid, active)
    mask = read_mask(options.in_mask, grid)
    if mask is not None:
        log.say(f" solvent mask: {options.in_mask}")
    resolved = _resolved(scale, grid.pixel_size)
    check_lowpass(options, resolved, grid.shape, grid.pixel_size)
    log.settings(options, resolved)
    estimate = memory_needed(grid.shape, modify, active[0].map_path)
    check_fits(estimate)  # under ulimit -v: refused before a map is read, naming the map and the amounts
    log.memory(estimate)
    work = ClassWork(grid.pixel_size, scale, modify, mask, options.threads, check,
                     unit=map_unit(active[0].map_path))  # the maps' unit: see grid.map_unit
    parallel = classes_at_once(options.threads, len(active), estimate)
    log.parallel(parallel, options.threads)
    plan = PagePlan(regions=skip_reason(inputs.kind, options.mode) is None,
                    classes=tuple(c.number for c in active), joint=options.joint)
    # the class maps are written in the background while the job goes on (passes.py): the last class's
    # while the regions are found; all are written before anything is published
    with _background_report(job, plan, log) as drawer, MapWriter() as writer:
        passes = jointly if options.joint else one_by_one
        results, empty, reference, measurements = passes(job, active, work, log, writer,
                                                         drawer.add if drawer else None, parallel)
        if not results:
            raise _nothing_to_analyse(inputs)
        skipped = sorted(skipped + empty)
        check()
        run = describe_run(options, job, inputs, version, grid.pixel_size, resolved, reference)

        def analysed(found: RegionsResult | None) -> None:
            """The report's remaining pages are drawn while the region files are written."""
            if drawer is not None:
                drawer.report.rest(run, results, found)

        with log.profile.step("regions"):
            regions = region_step(job, options, inputs.kind, measurements, grid,
                                  results[0].settings.lowpass_angstrom, check, log, analysed)
        del measurements
        if regions is None:  # no analysis: region_step returned before it had anything to hand over
            analysed(None)
        with log.profile.step("write"):
            writer.wait()

        summary = write_occupancy(job, options, run, inputs, results, skipped, regions)
        check()
        published = publish(job)  # every map and table of the run, moved to its final name at once
        log.wrote([summary])
        with log.profile.step("report"):  # with a background report: only the wait for it
            report = write_report(job, run, results, log.warn, regions, _drawing(drawer, log, check))
    publish(job, published)
    log.wrote(report)
    check()
    write_nodes(job, results, summary, report, version, regions)
    markers.mark_success(job.path)
    log.done(len(results), skipped, time.perf_counter() - started)
    return EXIT_OK


@contextmanager
def _background_report(job: JobDirectory, plan: PagePlan, log: JobLog) -> Iterator[_Drawer | None]:
    """The report's child process for the run (None: the report is drawn at the end, in the job); it
    is ended however the run ends."""
    drawer = start_background_report(job.path, plan, log.warn)
    if drawer is None:
        yield None
        return
    try:
        yield _Drawer(drawer, log)
    finally:
        drawer.close()


class _Drawer:
    """The job's side of the background report: sends finished classes, logs the pages drawn."""

    def __init__(self, report: BackgroundReport, log: JobLog):
        self.report, self.log = report, log

    def add(self, result: ClassResult) -> None:
        self.report.add(result)
        for page in self.report.pages_drawn():
            self.log.report_page(page)


def _drawing(drawer: _Drawer | None, log: JobLog, check: Callable[[], None]) -> Callable[..., list[Path]] | None:
    """How outputs.write_report gets the report: from the background child (None: drawn here)."""
    if drawer is None:
        return None

    def draw(job_dir: Path, run: RunDescription, results: list[ClassResult], *, regions: RegionsResult | None,
             into: Path) -> list[Path]:
        del job_dir  # the child knows it
        log.say(" report: drawing logfile.pdf")
        return drawer.report.finish(run, results, regions, into, log.report_page, check)

    return draw


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
    """Run the job; return the exit code (0 success, 1 failed, 2 aborted).  Never raises for bad input.

    The job directory is locked first (``relion/lock.py``): a run that finds another one in it stops
    at once and touches nothing.
    """
    log = JobLog(out, err)
    job = JobDirectory.of(options.output_dir)
    ending = _Ending()
    try:
        with ending.signals(), warnings_as_lines(log):
            lock = _lock(options.output_dir, job, log)
            if lock is None:
                return EXIT_FAILED
            try:
                return _ended(options, job, log, abort_check, ending)
            finally:
                lock.release()
    finally:
        log.close()


def _lock(output_dir: str, job: JobDirectory, log: JobLog) -> JobLock | None:
    """Create the job directory (unless its name is refused) and lock it; None after one ERROR line
    when that is impossible (another run holds it: nothing is touched)."""
    try:
        if job_name_problem(output_dir) is None:
            try:
                job.path.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise InputError(f"{job.path}: cannot create the job directory ({error.strerror or error})") from None
        elif not job.path.is_dir():
            raise InputError(job_name_problem(output_dir) or "")
        return JobLock.take(job.path)
    except InputError as error:
        log.error(f"ERROR: {first_line(error)}")
        return None


def _ended(options: JobOptions, job: JobDirectory, log: JobLog, abort_check: AbortCheck, ending: _Ending) -> int:
    """Run, and turn every way a run can end into RELION's marker and one line (run.err)."""
    log.keep_in(job.path)
    try:
        problem = job_name_problem(options.output_dir)
        if problem:
            raise InputError(problem)
        return _run(options, job, log, lambda: abort_check(job.path))
    except (JobAborted, KeyboardInterrupt) as error:
        ending.begin()
        return _aborted(job, log, str(error) or "interrupted")
    except InputError as error:
        ending.begin()
        log.error(f"ERROR: {_job_names(job, first_line(error))}")
        return _failed(job, log, keep_previous=isinstance(error, InputInJobDirectory))
    except OSError as error:
        ending.begin()
        log.error(f"ERROR: {_job_names(job, _os_error_line(error))}")
    except MemoryError:
        ending.begin()
        log.error(f"ERROR: {out_of_memory_line(log.memory_estimate)}")
    except Exception as error:  # a bug: say so in one line; the traceback goes to run.out for the report
        ending.begin()
        log.error(f"ERROR: unexpected {type(error).__name__}: {first_line(error)} (a bug: please report it "
                  "with run.out)")
        log.say(traceback.format_exc().rstrip())
    return _failed(job, log)


def _os_error_line(error: OSError) -> str:
    """An OSError as one line naming its file (disk full, permissions, ...)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}no space left on device (what this run wrote is removed again)"
    return first_line(error)


def _job_names(job: JobDirectory, line: str) -> str:
    """A message with staging-area paths shown as the final names they were written for."""
    return line.replace(f"{job.staging}{os.sep}", f"{job.path}{os.sep}".replace(f"{os.sep}{os.sep}", os.sep))


def _aborted(job: JobDirectory, log: JobLog, reason: str) -> int:
    """RELION_JOB_EXIT_ABORTED, and why; what this run wrote is removed."""
    try:
        discard(job)
        markers.mark_aborted(job.path)
    except OSError:
        pass
    log.say(f" aborted ({reason}); wrote {markers.ABORTED}")
    log.error(f"occupy_relion: aborted ({reason})")
    return EXIT_ABORTED


def _failed(job: JobDirectory, log: JobLog, keep_previous: bool = False) -> int:
    """RELION_JOB_EXIT_FAILURE (the error line is written already); the outputs of this and the
    previous run go (a Failed job directory holds only its logs and the marker), unless an input is
    one of them (``keep_previous``)."""
    try:
        discard(job, keep_previous)
    except OSError:
        pass
    if not markers.mark_failure(job.path):
        log.error(f"ERROR: could not write {markers.FAILURE} in {job.path}")
    log.say(" failed (see run.err)")
    return EXIT_FAILED


def fail_early(output_dir: str | None, message: str, err: TextIO | None = None) -> int:
    """A failure before the job could start (bad command line): error line, and FAILURE if we can.

    The directory is touched only when it exists and no other run holds it.
    """
    log = JobLog(err=err)
    try:
        directory = Path(output_dir) if output_dir else None
        if directory is None or not directory.is_dir():
            log.error(f"ERROR: {' '.join(message.split())}")
            return EXIT_FAILED
        job = JobDirectory.of(str(output_dir))
        try:
            lock = JobLock.take(directory)
        except InputError as error:
            log.error(f"ERROR: {' '.join(message.split())}")
            log.error(f"ERROR: {first_line(error)}")
            return EXIT_FAILED
        try:
            log.keep_in(directory)
            log.error(f"ERROR: {' '.join(message.split())}")
            try:
                markers.clear_stale(directory)
            except OSError:
                pass
            return _failed(job, log)
        finally:
            lock.release()
    finally:
        log.close()


class _Ending:
    """SIGTERM (a queue's cancel, ``kill``) stops the run like an abort, once: while the run ends
    (its clean-up and marker) further signals are ignored, so the clean-up itself is never cut short."""

    def __init__(self) -> None:
        self.ending = False

    def begin(self) -> None:
        self.ending = True

    def _handler(self, signum, frame):  # noqa: ARG002 (signal handler signature)
        if not self.ending:
            self.ending = True
            raise JobAborted(f"signal {signal.Signals(signum).name}")

    @contextmanager
    def signals(self) -> Iterator[None]:
        """Install the handler for the run (main thread only; elsewhere signals are left alone)."""
        try:
            previous = signal.signal(signal.SIGTERM, self._handler)
        except ValueError:  # not the main thread
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

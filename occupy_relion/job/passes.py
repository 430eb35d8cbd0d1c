"""The two ways through the classes: each against its own reference, or all against a joint one.

Both read a class's maps (``grid.py``), run the pure pipeline (``classes.py``), hand the maps to the
job's writer (``outputs.MapWriter``: written in the background, each as soon as it is final) and log
one line per class (in class order); with ``parallel`` above 1 several
classes run at once, in threads, sharing the job's threads (``--j``).  They return the results, the
classes found empty, the joint reference and every class's measurement (small: working grid only), which the region step
(``regions.py``) normalises by one common reference.  Each helper returns only what the next step
needs, so a class's full-size intermediates (its map, noise map and full-size scale maps, the previous
class's maps) are freed when the helper returns, without ``del``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import replace
from typing import TypeVar

import numpy as np

from ..core import Measurement, ScaleEstimate, joint_reference
from ..mapio import MapHeader
from ..relion.inputs import ClassInput
from ..result import ClassResult
from .classes import ClassWork, finish_class, measure_class, normalise_class
from .grid import empty_reason, read_class
from .log import JobLog
from .memory import MemoryEstimate
from .outputs import JobDirectory, MapWriter, class_map_writer, class_outputs


def _measured(cls: ClassInput, work: ClassWork, log: JobLog,
              with_noise: bool = True) -> tuple[np.ndarray, MapHeader, Measurement] | None:
    """(map, header, measurement) of one class, or None with a warning when its map is empty."""
    with log.profile.step("read"):
        maps = read_class(cls, with_noise, work.unit)
    if maps.identical_halves and cls.half_maps:
        log.warn(f"{cls.half_maps[0]}: the two half maps are identical, so they say nothing about the noise; "
                 "using the map's own solvent")
    reason = empty_reason(maps.volume)
    if reason:
        log.warn(f"{cls.map_path}: class {cls.number} map is {reason} (empty class); skipped")
        return None
    work.check()
    with log.profile.step("estimate"):
        measurement = measure_class(cls, maps.volume, maps.noise, work)
    return maps.volume, maps.header, measurement


def _finished(cls: ClassInput, volume: np.ndarray, header: MapHeader, estimate: ScaleEstimate, work: ClassWork,
              job: JobDirectory, log: JobLog, writer: MapWriter, started: float) -> ClassResult:
    """A normalised class modified and summarised (``classes.finish_class``); its result with its time
    (since ``started``).  Each of its maps goes to ``writer`` as soon as it is final, and is written
    while the job goes on (the next class, the region step); the maps of earlier classes are waited
    for first, so at most one class's maps wait to be written (the profile's "write" is that wait)."""
    with log.profile.step("write"):
        writer.wait()
    outputs = class_outputs(job, cls.number, work.modify)
    ready = class_map_writer(writer, job, outputs, header, cls.map_path, work.pixel_size)
    with log.profile.step("modify"):
        processed = finish_class(cls, volume, estimate, work, outputs, ready=ready)
    return replace(processed.result, seconds=time.perf_counter() - started)


def _own_estimate(cls: ClassInput, work: ClassWork,
                  log: JobLog) -> tuple[np.ndarray, MapHeader, Measurement, ScaleEstimate] | None:
    """A class measured and normalised by its own reference, or None when it is empty."""
    measured = _measured(cls, work, log)
    if measured is None:
        return None
    volume, header, measurement = measured
    with log.profile.step("estimate"):
        return volume, header, measurement, normalise_class(cls, measurement, None, work.threads)


#: what the passes return: results, classes found empty, the joint reference (None: each class its own),
#: and (class number, measurement) of every analysed class for the region step
Passed = tuple[list[ClassResult], list[int], float | None, list[tuple[int, Measurement]]]
#: told of each finished class, in class order (the background report draws its page)
Finished = Callable[[ClassResult], None]
T = TypeVar("T")
R = TypeVar("R")


class _Stopped(Exception):
    """Raised inside a class still running when another one has failed (never leaves this module)."""


def classes_at_once(threads: int, count: int, memory: MemoryEstimate) -> int:
    """How many classes run at once: one per thread of ``--j``, as many as there are classes and as
    many as the available memory holds (``memory.needed`` is one class's peak; the estimate of
    ``memory.py``).  Each class then gets ``threads // classes_at_once`` threads."""
    fit = count if memory.available is None else memory.available // max(memory.needed, 1)
    return max(1, min(threads, count, fit))


def _in_parallel(items: list[T], work: ClassWork, parallel: int, task: Callable[[T, ClassWork], R],
                 each: Callable[[T, R], None]) -> None:
    """``task`` on every item, ``parallel`` at a time, each with its share of the threads; ``each`` (in
    the calling thread) gets the items' answers in the items' order.

    One at a time, in this thread, when ``parallel`` is 1.  Otherwise the classes run in threads (the
    core's FFTs, reading and writing release the GIL) with ``work.threads // parallel`` threads each.
    When one fails or the job is stopped, the others stop at their next abort check, and every thread
    has ended before the exception leaves (no thread writes into a job directory being cleaned up).
    """
    if parallel <= 1 or len(items) <= 1:
        for item in items:
            each(item, task(item, work))
        return
    stop = threading.Event()

    def check() -> None:
        if stop.is_set():
            raise _Stopped
        work.check()

    share = replace(work, threads=max(1, work.threads // parallel), check=check)
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="occupy-class")
    try:
        futures = [pool.submit(task, item, share) for item in items]
        for item, future in zip(items, futures):
            while True:
                try:
                    answer = future.result(timeout=0.2)  # a timeout, so a signal is handled at once
                    break
                except FuturesTimeout:
                    continue
            each(item, answer)
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def one_by_one(job: JobDirectory, classes: list[ClassInput], work: ClassWork, log: JobLog, writer: MapWriter,
               finished: Finished | None = None, parallel: int = 1) -> Passed:
    """Each class against its own reference (no joint reference), ``parallel`` classes at a time."""
    measurements: list[tuple[int, Measurement]] = []
    results: list[ClassResult] = []
    empty: list[int] = []

    def one(cls: ClassInput, work: ClassWork) -> tuple[ClassResult, Measurement] | None:
        work.check()
        started = time.perf_counter()
        estimated = _own_estimate(cls, work, log)
        if estimated is None:
            return None
        volume, header, measurement, estimate = estimated
        return _finished(cls, volume, header, estimate, work, job, log, writer, started), measurement

    def each(cls: ClassInput, answer: tuple[ClassResult, Measurement] | None) -> None:
        if answer is None:
            empty.append(cls.number)
            return
        result, measurement = answer
        if _for_regions(work):
            measurements.append((cls.number, measurement))
        log.class_done(result, first=not results)
        results.append(result)
        if finished is not None:
            finished(result)

    _in_parallel(classes, work, parallel, one, each)
    return results, empty, None, measurements


def jointly(job: JobDirectory, classes: list[ClassInput], work: ClassWork, log: JobLog, writer: MapWriter,
            finished: Finished | None = None, parallel: int = 1) -> Passed:
    """Measure every class, then normalise all by one common reference (scales compare across classes).

    Only the measurements (working grid) are kept between the passes; maps are read again.  Both
    passes run ``parallel`` classes at a time.
    """
    measured: list[tuple[ClassInput, Measurement, float]] = []
    empty: list[int] = []

    def measure_one(cls: ClassInput, work: ClassWork) -> tuple[Measurement, float] | None:
        work.check()
        started = time.perf_counter()
        measurement = _measurement(cls, work, log)
        return None if measurement is None else (measurement, time.perf_counter() - started)

    def measured_one(cls: ClassInput, answer: tuple[Measurement, float] | None) -> None:
        if answer is None:
            empty.append(cls.number)
            return
        measurement, seconds = answer
        measured.append((cls, measurement, seconds))
        log.class_measured(cls.number, seconds, measurement.reference * work.unit)

    _in_parallel(classes, work, parallel, measure_one, measured_one)
    if not measured:
        return [], empty, None, []
    measurements = [(cls.number, m) for cls, m, _ in measured] if _for_regions(work) else []
    reference = joint_reference([m for _, m, _ in measured])
    log.joint_reference(reference * work.unit)
    pending: list[tuple[ClassInput, Measurement, float] | None] = list(measured)
    measured.clear()  # each class's measurement is let go when the class is finished

    def finish(index: int, work: ClassWork) -> ClassResult:
        work.check()
        started = time.perf_counter()
        with log.profile.step("estimate"):
            cls, estimate, seconds = _joint_estimate(pending, index, reference, work.threads)
        with log.profile.step("read"):
            maps = read_class(cls, with_noise=False, unit=work.unit)
        return _finished(cls, maps.volume, maps.header, estimate, work, job, log, writer, started - seconds)

    results: list[ClassResult] = []

    def each(_: int, result: ClassResult) -> None:
        log.class_done(result, first=not results)
        results.append(result)
        if finished is not None:
            finished(result)

    _in_parallel(list(range(len(pending))), work, parallel, finish, each)
    return results, empty, reference * work.unit, measurements


def _for_regions(work: ClassWork) -> bool:
    """Whether the region step needs the measurements: in occupancy mode, where they are small (working
    grid; ``regions.skip_reason``).  A resolution-mode measurement is full size."""
    return work.scale.mode == "occupancy"


def _measurement(cls: ClassInput, work: ClassWork, log: JobLog) -> Measurement | None:
    """Only the measurement of a class (its map is read again later), or None when it is empty."""
    measured = _measured(cls, work, log)
    return None if measured is None else measured[2]


def _joint_estimate(pending: list[tuple[ClassInput, Measurement, float] | None], index: int, reference: float,
                    threads: int) -> tuple[ClassInput, ScaleEstimate, float]:
    """Measured class ``index`` normalised by the joint reference; its measurement let go of."""
    entry = pending[index]
    assert entry is not None
    pending[index] = None
    cls, measurement, seconds = entry
    return cls, normalise_class(cls, measurement, reference, threads), seconds

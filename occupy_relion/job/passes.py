"""The two ways through the classes: each against its own reference, or all against a joint one.

Both read a class's maps (``grid.py``), run the pure pipeline (``classes.py``), write the maps
(``outputs.py``) and log one line per class; they return the results, the classes found empty, the
joint reference and every class's measurement (small: working grid only), which the region step
(``regions.py``) normalises by one common reference.  Each helper returns only what the next step
needs, so a class's full-size intermediates (its map, noise map and full-size scale maps, the previous
class's maps) are freed when the helper returns, without ``del``.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import replace

import numpy as np

from ..core import Measurement, ScaleEstimate, joint_reference
from ..mapio import MapHeader
from ..relion.inputs import ClassInput
from ..result import ClassResult
from .classes import ClassWork, ProcessedClass, finish_class, measure_class, normalise_class
from .grid import empty_reason, read_class
from .log import JobLog
from .outputs import JobDirectory, class_outputs, write_class_maps


def _measured(cls: ClassInput, work: ClassWork, log: JobLog,
              with_noise: bool = True) -> tuple[np.ndarray, MapHeader, Measurement] | None:
    """(map, header, measurement) of one class, or None with a warning when its map is empty."""
    maps = read_class(cls, with_noise, work.unit)
    if maps.identical_halves and cls.half_maps:
        log.warn(f"{cls.half_maps[0]}: the two half maps are identical, so they say nothing about the noise; "
                 "using the map's own solvent")
    reason = empty_reason(maps.volume)
    if reason:
        log.warn(f"{cls.map_path}: class {cls.number} map is {reason} (empty class); skipped")
        return None
    work.check()
    return maps.volume, maps.header, measure_class(cls, maps.volume, maps.noise, work)


def _written(job: JobDirectory, processed: ProcessedClass, header: MapHeader, seconds: float, log: JobLog,
             first: bool) -> ClassResult:
    """Write a finished class's maps; its result with its time, and its line in run.out."""
    write_class_maps(job, processed, header)
    result = replace(processed.result, seconds=seconds)
    log.class_done(result, first)
    return result


def _own_estimate(cls: ClassInput, work: ClassWork,
                  log: JobLog) -> tuple[np.ndarray, MapHeader, Measurement, ScaleEstimate] | None:
    """A class measured and normalised by its own reference, or None when it is empty."""
    measured = _measured(cls, work, log)
    if measured is None:
        return None
    volume, header, measurement = measured
    return volume, header, measurement, normalise_class(cls, measurement, None, work.threads)


#: what the passes return: results, classes found empty, the joint reference (None: each class its own),
#: and (class number, measurement) of every analysed class for the region step
Passed = tuple[list[ClassResult], list[int], float | None, list[tuple[int, Measurement]]]


def one_by_one(job: JobDirectory, classes: list[ClassInput], work: ClassWork, log: JobLog) -> Passed:
    """Each class against its own reference, one class at a time (no joint reference)."""
    measurements: list[tuple[int, Measurement]] = []

    def one(cls: ClassInput, first: bool) -> ClassResult | None:
        work.check()
        started = time.perf_counter()
        estimated = _own_estimate(cls, work, log)
        if estimated is None:
            return None
        volume, header, measurement, estimate = estimated
        if _for_regions(work):
            measurements.append((cls.number, measurement))
        processed = finish_class(cls, volume, estimate, work, class_outputs(job, cls.number, work.modify))
        return _written(job, processed, header, time.perf_counter() - started, log, first)

    results: list[ClassResult] = []
    empty: list[int] = []
    for cls in classes:
        result = one(cls, first=not results)
        if result is None:
            empty.append(cls.number)
        else:
            results.append(result)
    return results, empty, None, measurements


def jointly(job: JobDirectory, classes: list[ClassInput], work: ClassWork, log: JobLog) -> Passed:
    """Measure every class, then normalise all by one common reference (scales compare across classes).

    Only the measurements (working grid) are kept between the passes; maps are read again.
    """
    measured: deque[tuple[ClassInput, Measurement, float]] = deque()
    empty: list[int] = []
    for cls in classes:
        work.check()
        started = time.perf_counter()
        measurement = _measurement(cls, work, log)
        if measurement is None:
            empty.append(cls.number)
            continue
        seconds = time.perf_counter() - started
        measured.append((cls, measurement, seconds))
        log.class_measured(cls.number, seconds, measurement.reference * work.unit)
    if not measured:
        return [], empty, None, []
    measurements = [(cls.number, m) for cls, m, _ in measured] if _for_regions(work) else []
    reference = joint_reference([m for _, m, _ in measured])
    log.joint_reference(reference * work.unit)

    def finish(first: bool) -> ClassResult:
        work.check()
        started = time.perf_counter()
        cls, estimate, seconds = _next_joint_estimate(measured, reference, work.threads)
        maps = read_class(cls, with_noise=False, unit=work.unit)
        processed = finish_class(cls, maps.volume, estimate, work, class_outputs(job, cls.number, work.modify))
        return _written(job, processed, maps.header, seconds + time.perf_counter() - started, log, first)

    results: list[ClassResult] = []
    while measured:  # each class leaves the queue when it is finished
        results.append(finish(first=not results))
    return results, empty, reference * work.unit, measurements


def _for_regions(work: ClassWork) -> bool:
    """Whether the region step needs the measurements: in occupancy mode, where they are small (working
    grid; ``regions.skip_reason``).  A resolution-mode measurement is full size."""
    return work.scale.mode == "occupancy"


def _measurement(cls: ClassInput, work: ClassWork, log: JobLog) -> Measurement | None:
    """Only the measurement of a class (its map is read again later), or None when it is empty."""
    measured = _measured(cls, work, log)
    return None if measured is None else measured[2]


def _next_joint_estimate(queue: deque[tuple[ClassInput, Measurement, float]], reference: float,
                         threads: int) -> tuple[ClassInput, ScaleEstimate, float]:
    """The next measured class normalised by the joint reference, its measurement gone from the queue."""
    cls, measurement, seconds = queue.popleft()
    return cls, normalise_class(cls, measurement, reference, threads), seconds

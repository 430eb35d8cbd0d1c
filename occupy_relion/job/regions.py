"""The region step: which class has which part of the particle, and how much of it (issue 10).

After the per-class passes and before the outputs.  Every class's measurement (working grid, kept by
``passes.py``) is normalised by one common reference: the joint reference the per-class maps use with
``--joint``; otherwise the same common reference, for this analysis only (each class's own maps keep
their own).  One map alone (``--in_3dref``, a consensus refinement) is normalised by its own and gives
its partial regions.  The pure analysis (``occupy_relion.regions``) then finds the regions and their
occupancy in every class; this step writes their masks on the maps' own grid (``regionNNN_mask.mrc``,
``variable_mask.mrc``) and every class's occupancy map on the analysis grid
(``classNNN_occupancy.mrc``, what the ChimeraX script colours by), and returns a
:class:`~occupy_relion.result.RegionsResult` for occupancy.star, run.out, the report and the nodes.

Not analysed: MultiBody bodies (different parts of the particle, not states of it), and the
``resolution`` mode (its scale is not an occupancy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..core import Measurement, joint_reference, normalise
from ..regions import MaskParameters, RegionAnalysis, RegionError, RegionParameters, analyse_regions, region_mask
from ..regions import occupancy_map as class_occupancy_map
from ..report.summary import regions_view
from ..result import RegionsResult
from .grid import Grid
from .log import JobLog
from .options import JobOptions
from .outputs import (
    VARIABLE_MASK,
    JobDirectory,
    occupancy_map_name,
    region_mask_name,
    remove_stale_region_files,
    with_voxel_size,
    write_occupancy_map,
    write_region_mask,
)


def skip_reason(input_kind: str, mode: str) -> str | None:
    """Why a run gets no region analysis, or None (``passes.py`` keeps no measurements then)."""
    if input_kind == "MultiBody":
        return "the bodies of a multi-body refinement are different parts of the particle"
    if mode != "occupancy":
        return f"the {mode} mode's scale is not an occupancy"
    return None


def region_step(job: JobDirectory, options: JobOptions, input_kind: str,
                measurements: Sequence[tuple[int, Measurement]], grid: Grid, lowpass: float,
                check: Callable[[], None], log: JobLog,
                analysed: Callable[[RegionsResult], None] | None = None) -> RegionsResult | None:
    """The step as the job runs it: analyse (or say why not), write the files, log the table.
    ``analysed`` gets the result as soon as it is known, before its files are written (the report's
    region pages are drawn meanwhile)."""
    reason = skip_reason(input_kind, options.mode)
    if reason is not None:
        log.say(f" regions: not analysed ({reason})")
        remove_stale_region_files(job, set())
        return None
    left_out = [number for number, m in measurements if not m.settings.measurability.measurable]
    if left_out:
        log.say(f" regions: class {', '.join(f'{n:03d}' for n in left_out)} not measurable: left out")
        measurements = [(number, m) for number, m in measurements if number not in left_out]
    found = find_regions(job, measurements, grid, lowpass, options.region_parameters(), options.mask_parameters(),
                         options.threads, check, log.warn, analysed)
    if found is not None:
        log.regions(found)
    return found


def common_reference(measurements: Sequence[Measurement]) -> float:
    """The one reference every class is normalised by for the analysis: the joint reference
    (``core.joint_reference``, also what ``--joint`` uses); one map alone: its own."""
    return joint_reference(list(measurements))


def analysis_spacing(full_shape: Sequence[int], pixel_size: float,
                     grid_shape: Sequence[int]) -> tuple[float, float, float]:
    """Å per voxel (z, y, x) of a working grid covering the box of a ``full_shape`` map."""
    spacing = np.asarray(full_shape, dtype=np.float64) * pixel_size / np.asarray(grid_shape, dtype=np.float64)
    return float(spacing[0]), float(spacing[1]), float(spacing[2])


def analyse_classes(measurements: Sequence[tuple[int, Measurement]], pixel_size: float, lowpass: float,
                    parameters: RegionParameters, threads: int) -> tuple[RegionAnalysis, dict[int, np.ndarray]]:
    """The region analysis of the measured classes on one common reference, and the scale maps
    (working grid) it was given.  Raises RegionError when nothing is molecule."""
    reference = common_reference([m for _, m in measurements])
    scale: dict[int, np.ndarray] = {}
    confidence: dict[int, np.ndarray] = {}
    for number, measurement in measurements:
        estimate = normalise(measurement, reference, threads=threads)
        scale[number], confidence[number] = estimate.scale_grid, estimate.confidence_grid
    first = measurements[0][1]
    spacing = analysis_spacing(first.shape, pixel_size, first.confidence.shape)
    return analyse_regions(scale, confidence, spacing, lowpass, parameters, threads=threads), scale


def find_regions(job: JobDirectory, measurements: Sequence[tuple[int, Measurement]], grid: Grid, lowpass: float,
                 parameters: RegionParameters, masks: MaskParameters, threads: int, check: Callable[[], None],
                 warn: Callable[[str], None],
                 analysed: Callable[[RegionsResult], None] | None = None) -> RegionsResult | None:
    """Analyse, write the masks and occupancy maps; None (with a warning) when there is nothing to analyse.
    The result (its files named in advance) goes to ``analysed`` before the files are written."""
    if not measurements:
        remove_stale_region_files(job, set())
        return None
    try:
        analysis, scale = analyse_classes(measurements, grid.pixel_size, lowpass, parameters, threads)
    except RegionError as error:
        warn(f"regions not analysed: {error}")
        remove_stale_region_files(job, set())
        return None
    check()
    found = RegionsResult(analysis=analysis,
                          region_masks=tuple(job.name(region_mask_name(r.number)) for r in analysis.regions),
                          variable_mask=job.name(VARIABLE_MASK) if analysis.regions else None,
                          occupancy_maps=tuple((n, job.name(occupancy_map_name(n))) for n in analysis.classes),
                          view=regions_view(analysis, scale))
    if analysed is not None:
        analysed(found)
    header = with_voxel_size(grid.header, grid.pixel_size)
    for region in analysis.regions:
        mask = region_mask(analysis, [region.number], grid.shape, grid.pixel_size, masks)
        write_region_mask(job, region_mask_name(region.number), mask, header, f"mask of region {region.number}")
        del mask  # one full-size mask at a time
        check()
    if analysis.regions:
        mask = region_mask(analysis, None, grid.shape, grid.pixel_size, masks)
        write_region_mask(job, VARIABLE_MASK, mask, header, "mask of every variable region")
        del mask
        check()
    for number in analysis.classes:
        write_occupancy_map(job, number, class_occupancy_map(analysis, number), header, analysis.spacing)
    remove_stale_region_files(job, {*found.region_masks, *([found.variable_mask] if found.variable_mask else []),
                                    *(path for _, path in found.occupancy_maps)})
    return found

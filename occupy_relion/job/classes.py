"""The per-class pipeline: arrays in, full-size maps and a typed :class:`ClassResult` out.

Pure like the core (no files, no printing): the driver reads the maps (``grid.py``), hands them
here, and writes what comes back (``outputs.py``).  A class is measured (local statistic, solvent,
own reference), normalised by its own or the joint reference, then finished: modified, summarised.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..core import (
    EstimateSettings,
    MapError,
    Measurement,
    ModifyParameters,
    ScaleEstimate,
    ScaleParameters,
    SolventFitError,
    SolventModel,
    measure,
    modify_map,
    molecule_scale,
    normalise,
)
from ..errors import InputError
from ..relion.inputs import ClassInput
from ..report.summary import summarise_class
from ..result import ClassOutputs, ClassResult, MoleculeStatistics


@dataclass(frozen=True)
class ClassWork:
    """What every class of a run is processed with."""

    pixel_size: float
    scale: ScaleParameters
    modify: ModifyParameters
    mask: np.ndarray | None
    threads: int
    check: Callable[[], None]  # raises JobAborted when the job is asked to stop
    unit: float = 1.0  # the maps are read in this unit (grid.map_unit); results are given in map units


@dataclass(frozen=True)
class ProcessedClass:
    """A finished class: its full-size maps by kind (in writing order) and its result."""

    maps: dict[str, np.ndarray]
    result: ClassResult


def measure_class(cls: ClassInput, volume: np.ndarray, noise: np.ndarray | None, work: ClassWork) -> Measurement:
    """The local statistic, solvent model and own reference of one class map."""
    try:
        return measure(volume, work.pixel_size, work.scale, mask=work.mask, noise=noise, threads=work.threads,
                       check=work.check)
    except (MapError, SolventFitError) as error:
        raise InputError(f"{cls.map_path}: {error}") from None


def normalise_class(cls: ClassInput, measurement: Measurement, reference: float | None, threads: int) -> ScaleEstimate:
    """Scale and confidence of a measured class: against its own reference, or ``reference`` (joint)."""
    try:
        return normalise(measurement, reference, threads=threads)
    except MapError as error:
        raise InputError(f"{cls.map_path}: {error}") from None


def finish_class(cls: ClassInput, volume: np.ndarray, estimate: ScaleEstimate, work: ClassWork,
                 outputs: ClassOutputs, ready: Callable[[str, np.ndarray], None] | None = None) -> ProcessedClass:
    """The modified maps, the statistics and the report's view of a normalised class.

    ``ready`` is handed each full-size map (by kind) as soon as it is final and will not change: the
    scale and confidence before the modified maps are made, each modified map when it is done (the
    driver writes them meanwhile).  The result's ``seconds`` is 0: the driver, which also reads and
    writes the maps, sets the class's time.
    """
    if ready is not None:
        ready("scale", estimate.scale)
        ready("confidence", estimate.confidence)
    modified = modify_map(volume, estimate, work.pixel_size, work.modify, threads=work.threads, check=work.check)
    work.check()
    if work.unit != 1.0:  # back to the map's own units (exact: a power of two); scale and confidence have none
        _restore_units([volume, *modified.values()], work.unit)
        estimate = replace(estimate, solvent=in_map_units_solvent(estimate.solvent, work.unit),
                           settings=in_map_units(estimate.settings, work.unit))
    if ready is not None:
        for kind, array in modified.items():
            ready(kind, array)
    molecule = molecule_scale(estimate.scale, estimate.confidence)
    statistics = MoleculeStatistics.of_molecule(molecule)
    result = ClassResult(
        number=cls.number, input_path=cls.map_path, distribution=cls.distribution, resolution=cls.resolution,
        pixel_size=work.pixel_size, outputs=outputs, settings=estimate.settings, statistics=statistics,
        view=summarise_class(volume, estimate, modified["equalised"], molecule), seconds=0.0,
    )
    return ProcessedClass({"scale": estimate.scale, "confidence": estimate.confidence, **modified}, result)


def in_map_units(settings: EstimateSettings, unit: float) -> EstimateSettings:
    """Settings measured in units of ``unit`` in the map's own units (the densities are linear in it)."""
    return replace(settings, solvent_mean=settings.solvent_mean * unit, solvent_sd=settings.solvent_sd * unit,
                   noise_floor=settings.noise_floor * unit, reference_value=settings.reference_value * unit)


def in_map_units_solvent(solvent: SolventModel, unit: float) -> SolventModel:
    """The solvent model in the map's own units."""
    return replace(solvent, mean=solvent.mean * unit, sd=solvent.sd * unit,
                   edges=np.asarray(solvent.edges) * unit)


def _restore_units(arrays: list[np.ndarray], unit: float) -> None:
    """Multiply each distinct buffer by ``unit`` once, in place."""
    done: list[np.ndarray] = []
    for array in arrays:
        if any(np.shares_memory(array, other) for other in done):
            continue
        array *= np.float32(unit)
        done.append(array)


def listed_reason(cls: ClassInput) -> str | None:
    """Why a class listed in the model.star is not analysed (before its map is read), or None."""
    if cls.distribution is not None and cls.distribution <= 0:
        return "no particles (_rlnClassDistribution 0)"
    return None

"""occupancy.star: what the job did, in a form RELION programs and Schemes can read.

``data_occupancy_classes`` (a loop, first: the GUI's Display opens a STAR file's first block, and
this one's ``_rlnReferenceImage`` column lists the maps it can show): one row per analysed class.
``data_occupancy_general`` (key-value): the input, the RELION version, every parameter and the
derived settings shared by all classes.  Values a Scheme may branch on carry labels RELION knows
(docs/relion.md §5), so its operators (``float=star_table_min``, ``float=star_table_sort_idx``,
``string=read_star`` …) can read them:

==============================  ====================================================================
``_rlnClassNumber``             RELION's class (or body) number
``_rlnReferenceImage``          the equalised map of the class (a RELION-readable 3D map)
``_rlnClassDistribution``       from the model.star (1 for a lone map or a body)
``_rlnEstimatedResolution``     from the model.star as RELION wrote it, Å (1/res, ``inf`` when no shell
                                had signal); 0 when there is none, as RELION writes an unestimated one
``_rlnAverageValue``            mean scale inside the molecule (confidence ≥ 0.5, scale ≥ 0.05)
``_rlnStandardDeviationValue``  standard deviation of the scale inside the molecule
==============================  ====================================================================

Everything else uses our own ``_occupy…`` labels (RELION keeps, but cannot interpret, them).
The file is written atomically.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import numpy as np
import pandas as pd
import starfile

from ..atomic import atomic_path
from ..result import ClassResult

SUMMARY_NAME = "occupancy.star"
GENERAL_BLOCK = "occupancy_general"
CLASSES_BLOCK = "occupancy_classes"

#: what RELION writes for a resolution it has not estimated (MlModel starts it at 0, and reads a
#: missing one as 0); an estimated one is 1/resolution of the last shell with signal, ``inf`` for none
UNKNOWN_RESOLUTION = 0.0


def camel(name: str) -> str:
    """'lowpass_angstrom' -> 'LowpassAngstrom' (for ``_occupy…`` labels)."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def star_value(value):
    """A value as it should appear in a STAR file: plain numbers and single-token-safe strings."""
    if value is None:
        return "None"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (tuple, list, np.ndarray)):
        return ",".join(_short(v) for v in value)
    return str(value)


def _short(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def general_table(
    *,
    input_description: str,
    input_kind: str,
    model_path: str | None,
    relion_version: str,
    relion_version_source: str,
    class_count: int,
    processed: list[int],
    skipped: list[int],
    pixel_size: float,
    parameters: dict,
    settings: dict,
    joint_reference: float | None,
    program_version: str,
) -> dict:
    """The key-value table: input, RELION version, parameters (``_occupy<Name>``) and shared derived settings."""
    table = {
        "rlnModelStarFile": model_path or "None",
        "occupyInput": input_description,
        "occupyInputKind": input_kind,
        "occupyRelionVersion": relion_version,
        "occupyRelionVersionSource": relion_version_source,
        "occupyProgramVersion": program_version,
        "rlnNrClasses": int(class_count),
        "rlnPixelSize": float(pixel_size),
        "occupyClassesProcessed": ",".join(str(n) for n in processed) or "None",
        "occupyClassesSkipped": ",".join(str(n) for n in skipped) or "None",
    }
    for name, value in parameters.items():
        table["occupy" + camel(name)] = value
    for name, value in settings.items():
        table["occupy" + camel(name)] = value
    table["occupyJointReference"] = joint_reference
    return {label: star_value(value) for label, value in table.items()}


#: per-class settings written as ``_occupy<Name>`` columns, in this order
CLASS_SETTINGS = ("solvent_mean", "solvent_sd", "solvent_fraction", "solvent_region", "noise_floor",
                  "noise_floor_source", "reference_value", "reference_position_angstrom")

#: statistics written as ``_occupy<Name>`` columns (mean and sd have RELION labels)
CLASS_STATISTICS = ("scale_median", "scale_p05", "scale_p95", "partial_fraction", "molecule_voxels")


def class_row(result: ClassResult) -> dict:
    """One row of the per-class table (keys are labels without the leading underscore)."""
    resolution = UNKNOWN_RESOLUTION if result.resolution is None else result.resolution
    outputs, statistics = result.outputs, result.statistics
    row = {
        "rlnClassNumber": int(result.number),
        "rlnReferenceImage": outputs.equalised,
        "rlnClassDistribution": 1.0 if result.distribution is None else float(result.distribution),
        "rlnEstimatedResolution": float(resolution),
        "rlnAverageValue": statistics.scale_mean,
        "rlnStandardDeviationValue": statistics.scale_sd,
        "occupyInputMap": result.input_path,
        "occupyScaleMap": outputs.scale,
        "occupyConfidenceMap": outputs.confidence,
    }
    for kind, path in outputs.modified():
        if kind != "equalised":
            row["occupy" + camel(kind) + "Map"] = path
    for name in CLASS_STATISTICS:
        row["occupy" + camel(name)] = getattr(statistics, name)
    for name in CLASS_SETTINGS:
        row["occupy" + camel(name)] = getattr(result.settings, name)
    row["occupySeconds"] = round(float(result.seconds), 3)
    return {label: star_value(value) for label, value in row.items()}


def write_summary(path: str | os.PathLike, general: dict, rows: list[dict]) -> Path:
    """Write occupancy.star (both tables, the classes first) atomically."""
    path = Path(path)
    classes = pd.DataFrame(rows) if rows else pd.DataFrame({"rlnClassNumber": pd.Series([], dtype=int)})
    with atomic_path(path, ".star") as temp:
        starfile.write({CLASSES_BLOCK: classes, GENERAL_BLOCK: general}, temp, float_format="%.6g")
    return path


def read_summary(path: str | os.PathLike) -> tuple[dict, pd.DataFrame]:
    """(general table, per-class table) of an occupancy.star."""
    data = starfile.read(path, always_dict=True)
    return data[GENERAL_BLOCK], data[CLASSES_BLOCK]

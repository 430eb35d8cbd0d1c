"""occupancy.star: what the job did, in a form RELION programs and Schemes can read.

``data_occupancy_classes`` (a loop, first: the GUI's Display opens a STAR file's first block, and
this one's ``_rlnReferenceImage`` column lists the maps it can show): one row per analysed class.
``data_occupancy_general`` (key-value): the input, the RELION version, every parameter, the derived
settings shared by all classes, and what the per-class numbers mean (``_occupyAbout…``).
``data_occupancy_regions`` (a loop): one row per region and class.  ``data_occupancy_regionNNN``
(one per region, a loop with one row per class): that region's occupancy under a label RELION
knows, so a Scheme can pick the class that has the region.  Values a Scheme may branch on carry
labels RELION knows (docs/relion.md §5), so its operators (``float=star_table_sort_idx``,
``float=read_star`` …) can read them:

==============================  ====================================================================
``_rlnClassNumber``             RELION's class (or body) number
``_rlnReferenceImage``          the equalised map of the class (a RELION-readable 3D map)
``_rlnClassDistribution``       from the model.star (1 for a lone map or a body)
``_rlnEstimatedResolution``     from the model.star as RELION wrote it, Å (1/res, ``inf`` when no shell
                                had signal); 0 when there is none, as RELION writes an unestimated one
``_rlnAverageValue``            classes: the class's completeness, the edge-free occupancy of the
                                consensus molecule (−1 when it could not be measured, and always for a
                                class that is not measurable: pure noise); a region's table: the
                                region's occupancy in the class
``_rlnMaskName``                the region's soft mask (``regionNNN_mask.mrc``)
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
from ..regions import ClassCompleteness, RegionAnalysis
from ..result import ClassResult

SUMMARY_NAME = "occupancy.star"
GENERAL_BLOCK = "occupancy_general"
CLASSES_BLOCK = "occupancy_classes"
REGIONS_BLOCK = "occupancy_regions"

#: what a per-class number reads when it could not be measured (no region analysis)
NOT_MEASURED = -1.0


def region_block(number: int) -> str:
    """The name of region ``number``'s own table (one row per class)."""
    return f"occupancy_region{number:03d}"

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
CLASS_SETTINGS = ("measurability", "solvent_mean", "solvent_sd", "solvent_fraction", "solvent_region",
                  "no_data_fraction", "noise_floor", "noise_floor_source", "noise_floor_spread", "noise_bias_decay",
                  "reference_value", "reference_position_angstrom")

#: whole-molecule statistics of the scale (edges included), written as ``_occupyMolecule<Name>`` columns
CLASS_STATISTICS = ("scale_mean", "scale_sd", "scale_median", "scale_p05", "scale_p95", "partial_fraction",
                    "molecule_voxels")

#: what the per-class numbers mean (the general table's ``_occupyAbout<Label>``; also docs)
MEANINGS = {
    "rlnAverageValue": "completeness: the edge-free occupancy (0-1) of the consensus molecule of all classes, "
                       "each region and the constant part weighted by its volume; -1: not measured",
    "occupyCompletenessRank": "1 = the most complete class; 0: not measured",
    "occupyMedianOccupancy": "median edge-free occupancy over the core of the consensus molecule; -1: not measured",
    "occupyPartialFraction": "share of the consensus molecule's core with occupancy below 0.5; -1: not measured",
    "occupyRegionOccupancy": "edge-free occupancy (0-1) of a region in a class, on the common reference "
                             "(table occupancy_regions; occupancy_regionNNN: as rlnAverageValue)",
    "occupyMoleculeScaleMean": "the class's own scale map over its whole molecule, edges included (the rim of "
                               "density reads low): mean; likewise Sd, Median, P05, P95, PartialFraction, Voxels; "
                               "-1: the class is not measurable",
    "occupyMeasurability": "measurable, or why not (not measurable: no molecule stands out of the noise); a class "
                           "that is not measurable reads -1 everywhere and is never part of the regions",
}


def class_row(result: ClassResult, completeness: ClassCompleteness | None = None,
              occupancy_map: str | None = None) -> dict:
    """One row of the per-class table (keys are labels without the leading underscore).

    ``completeness``: the class's edge-free numbers from the region analysis (None: not measured, -1).
    """
    resolution = UNKNOWN_RESOLUTION if result.resolution is None else result.resolution
    outputs, statistics = result.outputs, result.statistics
    if not result.measurable:  # pure noise: no number of it may look like a measurement
        completeness = None
    measured = completeness is not None
    row = {
        "rlnClassNumber": int(result.number),
        "rlnReferenceImage": outputs.equalised,
        "rlnClassDistribution": 1.0 if result.distribution is None else float(result.distribution),
        "rlnEstimatedResolution": float(resolution),
        "rlnAverageValue": completeness.completeness if completeness is not None else NOT_MEASURED,
        "occupyCompletenessRank": completeness.rank if completeness is not None else 0,
        "occupyMedianOccupancy": completeness.median if completeness is not None else NOT_MEASURED,
        "occupyPartialFraction": completeness.partial_fraction if completeness is not None else NOT_MEASURED,
        "occupyInputMap": result.input_path,
        "occupyScaleMap": outputs.scale,
        "occupyConfidenceMap": outputs.confidence,
    }
    if measured or occupancy_map is not None:
        row["occupyOccupancyMap"] = occupancy_map
    for kind, path in outputs.modified():
        if kind != "equalised":
            row["occupy" + camel(kind) + "Map"] = path
    for name in CLASS_STATISTICS:
        value = getattr(statistics, name) if result.measurable else NOT_MEASURED
        row["occupyMolecule" + camel(name.removeprefix("molecule_"))] = value
    for name in CLASS_SETTINGS:
        row["occupy" + camel(name)] = getattr(result.settings, name)
    row["occupySeconds"] = round(float(result.seconds), 3)
    return {label: star_value(value) for label, value in row.items()}


def regions_general(analysis: RegionAnalysis, mask_extend: float, mask_soft_edge: float) -> dict:
    """The region analysis's entries of the general table (``_occupy…``), and what the numbers mean."""
    p = analysis.parameters
    table = {
        "occupyRegionCount": len(analysis.regions),
        "occupyRegionClasses": analysis.classes,
        "occupyRegionGridShape": analysis.shape,
        "occupyRegionGridSpacing": analysis.spacing,
        "occupyRegionFullLevel": analysis.full_level,
        "occupyMoleculeVolume": analysis.molecule_volume_A3,
        "occupyRegionMinDifference": p.min_difference,
        "occupyRegionEdgeWidth": p.edge_width,
        "occupyRegionCoreLevel": p.core_level,
        "occupyRegionMinVolume": p.min_volume,
        "occupyRegionSimilarity": p.similarity,
        "occupyRegionMaxRegions": p.max_regions,
        "occupyRegionMaskExtendAngstrom": mask_extend,
        "occupyRegionMaskSoftEdgeAngstrom": mask_soft_edge,
        "occupyRanking": ",".join(str(n) for n in analysis.ranked_classes),
    }
    return {label: star_value(value) for label, value in table.items()}


def meanings() -> dict:
    """The general table's ``_occupyAbout<Label>`` entries."""
    return {"occupyAbout" + camel(label.removeprefix("occupy")): text for label, text in MEANINGS.items()}


def region_rows(analysis: RegionAnalysis, masks: tuple[str, ...]) -> list[dict]:
    """Table occupancy_regions: one row per region and class (region order, then class order)."""
    rows = []
    for region, mask in zip(analysis.regions, masks):
        for number, occupancy in zip(region.classes, region.occupancy):
            rows.append({
                "occupyRegionNumber": region.number,
                "rlnClassNumber": int(number),
                "occupyRegionOccupancy": float(occupancy),
                "rlnMaskName": mask,
                "occupyRegionVolume": float(region.volume_A3),
                "occupyRegionCentreX": region.centre_A[0],
                "occupyRegionCentreY": region.centre_A[1],
                "occupyRegionCentreZ": region.centre_A[2],
                "occupyRegionVariability": region.variability,
                "occupyRegionDescription": region.description,
            })
    return [{label: star_value(value) for label, value in row.items()} for row in rows]


#: the columns of occupancy_regions (also written when there is no region)
REGION_COLUMNS = ("occupyRegionNumber", "rlnClassNumber", "occupyRegionOccupancy", "rlnMaskName",
                  "occupyRegionVolume", "occupyRegionCentreX", "occupyRegionCentreY", "occupyRegionCentreZ",
                  "occupyRegionVariability", "occupyRegionDescription")


def region_tables(analysis: RegionAnalysis, masks: tuple[str, ...], classes: list[dict]) -> dict[str, pd.DataFrame]:
    """One table per region (``occupancy_regionNNN``), one row per class in the order of ``classes`` (the
    per-class rows): class number, distribution, equalised map, the region's occupancy as
    ``_rlnAverageValue`` and its mask: what a Scheme's operators can sort and read."""
    tables = {}
    for region, mask in zip(analysis.regions, masks):
        rows = [{"rlnClassNumber": row["rlnClassNumber"], "rlnReferenceImage": row["rlnReferenceImage"],
                 "rlnClassDistribution": row["rlnClassDistribution"],
                 "rlnAverageValue": float(region.occupancy_of(int(row["rlnClassNumber"]))), "rlnMaskName": mask}
                for row in classes if int(row["rlnClassNumber"]) in region.classes]
        tables[region_block(region.number)] = pd.DataFrame(rows)
    return tables


def write_summary(path: str | os.PathLike, general: dict, rows: list[dict], regions: list[dict] | None = None,
                  extra: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write occupancy.star atomically: the classes first, the general table, then (when the regions
    were analysed) occupancy_regions and the per-region tables."""
    path = Path(path)
    classes = pd.DataFrame(rows) if rows else pd.DataFrame({"rlnClassNumber": pd.Series([], dtype=int)})
    blocks: dict[str, object] = {CLASSES_BLOCK: classes, GENERAL_BLOCK: general}
    if regions is not None:
        blocks[REGIONS_BLOCK] = (pd.DataFrame(regions) if regions
                                 else pd.DataFrame({c: pd.Series([], dtype=object) for c in REGION_COLUMNS}))
    blocks.update(extra or {})
    with atomic_path(path, ".star") as temp:
        starfile.write(blocks, temp, float_format="%.6g")
    return path


def read_summary(path: str | os.PathLike) -> tuple[dict, pd.DataFrame]:
    """(general table, per-class table) of an occupancy.star."""
    data = starfile.read(path, always_dict=True)
    return data[GENERAL_BLOCK], data[CLASSES_BLOCK]


def read_regions(path: str | os.PathLike) -> pd.DataFrame | None:
    """The occupancy_regions table of an occupancy.star (None when the regions were not analysed)."""
    data = starfile.read(path, always_dict=True)
    return data.get(REGIONS_BLOCK)

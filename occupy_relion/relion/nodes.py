"""RELION_OUTPUT_NODES.star: which outputs RELION adds to the pipeline, with what type.

Each version gets the type column it reads, as its own programs write it (``relion_star_handler
--split``): 3.1 the integer ``_rlnPipeLineNodeType``, 4.0 and 5.0 the string
``_rlnPipeLineNodeTypeLabel`` (they ignore the integer; 3.1 warns "unknown label" about the string
on every run).  When the version is not known (no pipeline says it) both columns are written, which
all three accept.  The part of a label before the first dot picks the GUI browser (``.Nodes/<part>/``);
later parts are free keywords.

Node kinds we register (docs/relion.md §3):

- ``map``: the equalised/attenuated/sigmoid maps are ordinary 3D maps (6 / ``DensityMap.mrc``), so
  a later Class3D, Refine3D or MaskCreate can take them as a reference.
- ``localres``: the scale maps are per-voxel values on the map's grid, like a local-resolution map
  (12 / ``Image3D.mrc.localresmap``).  No RELION job takes this type as an input; the GUI lists
  them under Display (and in the ``Image3D`` node browser), never as a reference.
- ``mask``: the region masks (``variable_mask.mrc``, ``regionNNN_mask.mrc``): soft 3D masks in
  [0, 1] as ``relion_mask_create`` writes them (7 / ``Mask3D.mrc``), so Particle subtraction, Class3D
  and Refine3D offer them as masks.
- ``logfile``: the PDF report (13 / ``LogFile.pdf.relion``): the GUI's Display button opens it.
- ``process``: occupancy.star, our result table.  4.0 and 5.0 have a family for job results that
  are STAR files (``ProcessData``, e.g. postprocess.star is ``ProcessData.star.relion.postprocess``),
  so it becomes ``ProcessData.star.occupy``.  3.1 has no such type: its integers that take a STAR
  file are consumed by specific jobs (8: model.star for Select, which would then look for a
  ``_data.star`` beside it; 14: postprocess.star for CtfRefine and Polish), each of which would
  fail on our table, so for 3.1 the table is not registered (it is still in the job directory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import starfile

from ..atomic import write_text
from .markers import OUTPUT_NODES
from .version import DEFAULT

#: kind -> (3.1 integer, 4.0 label, 5.0 label); None: not registered for that version
NODE_TYPES: dict[str, tuple[int | None, str | None, str | None]] = {
    "map": (6, "DensityMap.mrc", "DensityMap.mrc"),
    "localres": (12, "Image3D.mrc.localresmap", "Image3D.mrc.localresmap"),
    "mask": (7, "Mask3D.mrc", "Mask3D.mrc"),
    "logfile": (13, "LogFile.pdf.relion", "LogFile.pdf.relion"),
    "process": (None, "ProcessData.star.occupy", "ProcessData.star.occupy"),
}

#: integer written in the 3.1 column for kinds 3.1 does not register (only when the version is unknown;
#: 4.0/5.0 ignore the integer)
_NO_INTEGER = 14

NAME_COLUMN = "_rlnPipeLineNodeName"
INTEGER_COLUMN = "_rlnPipeLineNodeType"
LABEL_COLUMN = "_rlnPipeLineNodeTypeLabel"


@dataclass(frozen=True)
class OutputNode:
    """One output file (path relative to the project directory) and its node kind."""

    name: str
    kind: str


def node_type(kind: str, version: str) -> tuple[int, str] | None:
    """(integer, label) of a node kind for a RELION version, or None if that version gets no node."""
    if kind not in NODE_TYPES:
        raise ValueError(f"unknown node kind {kind!r}")
    integer, label40, label50 = NODE_TYPES[kind]
    if version.startswith("3"):
        return None if integer is None else (integer, label40 or "")
    label = label40 if version.startswith("4") else label50
    if label is None:
        return None
    return (integer if integer is not None else _NO_INTEGER, label)


def format_nodes(nodes: list[OutputNode], version: str | None) -> str:
    """The text of RELION_OUTPUT_NODES.star for ``version`` (None: not known, both type columns).

    Nodes this version cannot take are left out; an unknown version gets the default's rows.
    """
    rows_for = version or DEFAULT
    columns: tuple[str, ...]
    if version is None:
        columns = (NAME_COLUMN, INTEGER_COLUMN, LABEL_COLUMN)
    elif version.startswith("3"):
        columns = (NAME_COLUMN, INTEGER_COLUMN)
    else:
        columns = (NAME_COLUMN, LABEL_COLUMN)
    rows = []
    for node in nodes:
        types = node_type(node.kind, rows_for)
        if types is None:
            continue
        if any(c.isspace() for c in node.name):
            raise ValueError(f"node name with white space cannot be registered in RELION: {node.name!r}")
        rows.append({NAME_COLUMN: node.name, INTEGER_COLUMN: int(types[0]), LABEL_COLUMN: types[1]})
    table = pd.DataFrame(rows, columns=[NAME_COLUMN, INTEGER_COLUMN, LABEL_COLUMN])[list(columns)]
    if INTEGER_COLUMN in columns:
        table = table.astype({INTEGER_COLUMN: int})
    table.columns = [column.removeprefix("_") for column in columns]  # starfile adds the underscore
    return starfile.to_string({"output_nodes": table})


def write_output_nodes(job_dir: str | os.PathLike, nodes: list[OutputNode], version: str | None) -> Path:
    """Write RELION_OUTPUT_NODES.star into ``job_dir`` atomically (``version`` None: not known)."""
    path = Path(job_dir) / OUTPUT_NODES
    write_text(path, format_nodes(nodes, version))
    return path

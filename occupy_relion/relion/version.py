"""Which RELION runs the project: read from ``default_pipeline.star``, or forced by the user.

RELION 3.1 and 4.0 both write ``# version 30001``; 3.1 lists processes with integer
``_rlnPipeLineProcessType``, 4.0 with ``_rlnPipeLineProcessTypeLabel`` strings.  5.0 writes
``# version 50001``.  The version decides the node type labels in RELION_OUTPUT_NODES.star.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

#: assumed when nothing tells us (labels for 4.0 and 5.0 agree for every node we write)
DEFAULT = "5.0"

_VERSION_LINE = re.compile(r"^#\s*version\s+(\d+)")


@dataclass(frozen=True)
class RelionVersion:
    """A RELION major.minor version and how we know it."""

    version: str  # "3.1", "4.0" or "5.0": the versions whose node conventions we know
    source: str  # e.g. "default_pipeline.star", "--relion_version", "default"
    assumed: bool = False  # True when nothing told us the version and DEFAULT was taken


def parse_version(text: str) -> str:
    """'3', '3.1', '31', '4', '4.0.2', '5', '5.0', 'relion-5.0' -> '3.1' / '4.0' / '5.0'."""
    cleaned = str(text).strip().lower()
    for prefix in ("relion-", "relion_", "relion", "v"):
        if cleaned.startswith(prefix):
            cleaned = cleaned[len(prefix):]
    match = re.fullmatch(r"(\d)(?:\.?(\d+))?(?:\.\d+)*", cleaned)
    if not match:
        raise InputError(f"--relion_version: {text!r} is not a RELION version (3.1, 4.0 or 5.0)")
    major = int(match.group(1))
    if major == 3:
        return "3.1"
    if major == 4:
        return "4.0"
    if major == 5:
        return "5.0"
    raise InputError(f"--relion_version: RELION {text} is not supported (3.1, 4.0 or 5.0)")


def version_from_pipeline(path: str | os.PathLike) -> str | None:
    """The RELION version that wrote a ``default_pipeline.star``, or None if it cannot tell."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            text = handle.read(1 << 20)
    except OSError:
        return None
    number = None
    for line in text.splitlines():
        match = _VERSION_LINE.match(line.strip())
        if match:
            number = int(match.group(1))
            break
    if number is not None and number >= 50000:
        return "5.0"
    if "_rlnPipeLineProcessTypeLabel" in text or "_rlnPipeLineNodeTypeLabel" in text:
        return "4.0"
    if "_rlnPipeLineProcessType" in text or "_rlnPipeLineNodeType" in text:
        return "3.1"
    if number is not None and number >= 40000:
        return "4.0"
    return None  # "# version 30001" alone (a new project): RELION 3.1 and 4.0 both write it


def detect_version(project_dir: str | os.PathLike = ".", forced: str | None = None) -> RelionVersion:
    """The version to write nodes for: ``forced`` if given, else the project's pipeline, else DEFAULT."""
    if forced not in (None, ""):
        return RelionVersion(parse_version(forced), "--relion_version")
    pipeline = Path(project_dir) / "default_pipeline.star"
    found = version_from_pipeline(pipeline)
    if found is not None:
        return RelionVersion(found, "default_pipeline.star")
    return RelionVersion(DEFAULT, "default (no default_pipeline.star)", assumed=True)

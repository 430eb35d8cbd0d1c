"""``occupy.cxc``: a ChimeraX command script showing every class coloured by its local scale.

What it shows: each class's *input* map (the class map RELION wrote, the one the user knows), as a
surface coloured by its scale map on the fixed range 0–1 with the viridis palette and one shared
colour key.  A weak or partly occupied region is then visible as such (dark blue, often fragmented)
instead of being hidden, as it would be in the equalised map that brings every region to full
strength; the equalised maps are listed (commented out) for whoever wants them.  The scale maps are
opened for the colouring and hidden.  The classes are tiled side by side in class order.

Contour rule, the same for every class: the level of each class is its solvent mean + 3 sd of the
solvent noise of its own full-resolution map (:data:`~occupy_relion.report.summary.CONTOUR_SIGMAS`), i.e.
"3 σ above the solvent", which removes nearly all noise whatever the class's signal, so classes
with less density really look weaker.  A class whose noise could not be measured falls back to
its low-passed solvent statistics; the numbers are written on each line so they can be changed.

Paths: ChimeraX runs the commands of a .cxc file from the file's own directory (it changes into it
while the script runs), whether it is opened from the job directory (``chimerax occupy.cxc``), the
project directory (``chimerax External/job012/occupy.cxc``) or ChimeraX's File > Open.  So every
path is written relative to the job directory: the script keeps working when the project is moved
or copied to another computer, which absolute paths would not.  Only maps that exist when the
script is written are named.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..result import ClassResult, RegionsResult
from ..text import fmt
from . import SCRIPT_NAME
from .style import VIRIDIS_STOPS, chimerax_palette
from .summary import CONTOUR_SIGMAS


@dataclass(frozen=True)
class _Shown:
    """A class the script shows: which map, coloured by which scale map, at which level."""

    number: int
    path: str  # relative to the job directory
    label: str  # "input map" or "equalised map"
    scale: str | None  # the scale map, relative to the job directory; None: shown uncoloured
    level: float
    rule: str  # how the level was derived

    @property
    def name(self) -> str:
        return f"class {self.number}"


def _relative_to_job(path: str, job_dir: Path, project_dir: Path) -> tuple[str, Path]:
    """(path as the script names it, relative to the job directory; the file on this machine)."""
    target = Path(path)
    if not target.is_absolute():
        target = project_dir / target
    target = Path(os.path.abspath(target))
    try:
        name = os.path.relpath(target, os.path.abspath(job_dir))
    except ValueError:  # another drive (Windows): only an absolute path can reach it
        name = str(target)
    return Path(name).as_posix(), target


def _existing(path: str | None, job_dir: Path, project_dir: Path) -> str | None:
    """The script's name of a map that exists, or None."""
    if not path:
        return None
    name, real = _relative_to_job(path, job_dir, project_dir)
    return name if real.is_file() else None


def _quoted(text: str) -> str:
    """A ChimeraX command argument (paths and names may contain spaces)."""
    return '"' + text.replace('"', "'") + '"'


def _model_range(ids: list[int]) -> str:
    """ChimeraX model spec of a list of model numbers, e.g. '#1-3' or '#1,3,4'."""
    if not ids:
        return ""
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"#{ids[0]}" if len(ids) == 1 else f"#{ids[0]}-{ids[-1]}"
    return "#" + ",".join(str(i) for i in ids)


def _choose(classes: Sequence[ClassResult], job_dir: Path,
            project_dir: Path) -> tuple[list[_Shown], list[str], list[str]]:
    """(classes shown, notes about the others, commented-out lines opening the equalised maps)."""
    shown, notes, equalised_lines = [], [], []
    for result in classes:
        tag = f"class {result.number}"
        input_name = _existing(result.input_path, job_dir, project_dir)
        equalised_name = _existing(result.outputs.equalised, job_dir, project_dir)
        if input_name is None and equalised_name is None:
            notes.append(f"# {tag}: neither its input nor its equalised map exists; not shown")
            continue
        scale = _existing(result.outputs.scale, job_dir, project_dir)
        if scale is None:
            notes.append(f"# {tag}: no scale map; shown uncoloured")
        if input_name is not None and equalised_name is not None:
            equalised_lines.append(f"# open {_quoted(equalised_name)} name {_quoted(tag + ' equalised')}")
        if input_name is None:
            notes.append(f"# {tag}: its input map is missing; its equalised map is shown instead")
        view = result.view
        shown.append(_Shown(result.number, input_name or equalised_name or "",
                            "input map" if input_name else "equalised map", scale, view.contour_level,
                            f"solvent mean + {CONTOUR_SIGMAS:g} × {view.contour_basis}"))
    return shown, notes, equalised_lines


def _preamble(job_dir: Path) -> list[str]:
    return [
        f"# {SCRIPT_NAME}, written by occupy_relion: every class coloured by its local scale",
        "# (relative occupancy; 0 = empty, 1 = as strong as the best-ordered part of the map).",
        "#",
        "# Open it from the job directory:      chimerax occupy.cxc",
        f"#   or from the project directory:     chimerax {Path(job_dir).as_posix().rstrip('/')}/{SCRIPT_NAME}",
        "#   or in ChimeraX: File > Open, or the command  open /path/to/occupy.cxc",
        "# ChimeraX runs a .cxc file from the file's own directory, so the paths below are relative",
        "# to this job directory and keep working when the project is moved.",
        "#",
        "# Shown: each class's input map, coloured by its scale map (hidden) with one palette on the",
        "# fixed range 0-1 (viridis: dark blue = weak or empty, yellow = full).  Contour of every",
        f"# class: its solvent mean + {CONTOUR_SIGMAS:g} × its solvent noise sd (level on each line).",
        "# Note: this script first closes every model already open in ChimeraX.",
    ]


def _commands(shown: list[_Shown]) -> list[str]:
    """Open, contour, tile and colour the shown classes (model i is shown[i - 1]; scale maps follow)."""
    display_ids = list(range(1, len(shown) + 1))
    scale_ids: dict[int, int] = {}
    for entry in shown:
        if entry.scale is not None:
            scale_ids[entry.number] = len(shown) + len(scale_ids) + 1
    lines = ["", "close", "set bgColor white", "lighting soft", "", "# the class maps (shown)"]
    lines += [f"open {_quoted(entry.path)} name {_quoted(entry.name)}" for entry in shown]
    if scale_ids:
        lines += ["", "# their scale maps (hidden: only used for the colouring)"]
        lines += [f"open {_quoted(entry.scale)} name {_quoted(entry.name + ' scale')}"
                  for entry in shown if entry.scale is not None]
        lines.append(f"hide {_model_range(sorted(scale_ids.values()))} models")
    lines += ["", "# the same contour rule for every class (ChimeraX has no end-of-line comments: rules above)"]
    for model, entry in zip(display_ids, shown):
        lines += [f"# {entry.name} ({entry.label}): {entry.rule}",
                  f"volume #{model} level {entry.level:.6g} style surface step 1"]
    if len(shown) > 1:
        lines += ["", "# side by side in class order (rows from the top left); scale maps follow their class",
                  f"tile {_model_range(display_ids)}"]
        lines += [f"view position #{scale_ids[entry.number]} sameAsModels #{model}"
                  for model, entry in zip(display_ids, shown) if entry.number in scale_ids]
    if scale_ids:
        lines += ["", "# colour by scale: one palette, fixed range 0-1"]
        lines += [f"color sample #{model} map #{scale_ids[entry.number]} palette {chimerax_palette()} range 0,1"
                  for model, entry in zip(display_ids, shown) if entry.number in scale_ids]
        key = " ".join(f"{colour}:{value:g}" for value, colour in VIRIDIS_STOPS)
        lines += ["", "# one colour key for all classes", f"key {key} pos 0.88,0.08 size 0.025,0.4",
                  '2dlabels text "scale (relative occupancy)" xpos 0.70 ypos 0.03 size 16 color black']
    order = ", ".join(str(entry.number) for entry in shown)
    lines += ["", f"2dlabels text {_quoted('classes ' + order + ' (in this order)')} xpos 0.02 ypos 0.95 size 16 "
              "color black", "view"]
    return lines


def chimerax_script(classes: Sequence[ClassResult], *, job_dir: str | os.PathLike,
                    project_dir: str | os.PathLike, regions: RegionsResult | None = None) -> str:
    """The text of ``occupy.cxc`` for ``classes`` (paths resolved against ``project_dir``)."""
    job_dir, project_dir = Path(job_dir), Path(project_dir)
    shown, notes, equalised_lines = _choose(classes, job_dir, project_dir)
    lines = _preamble(job_dir)
    if not shown:
        return "\n".join([*lines, "#", "# No class map exists, so there is nothing to show.", *notes]) + "\n"
    lines += notes + _commands(shown)
    if equalised_lines:
        lines += ["", "# The equalised maps (every region brought to full strength), to open instead:"]
        lines += equalised_lines
    spec = _model_range(list(range(1, len(shown) + 1)))
    lines += ["", f"# Levels used (for one common level instead:  volume {spec} level <value>):"]
    lines += [f"#   {entry.name}: {fmt(entry.level)}  ({entry.rule})" for entry in shown]
    return "\n".join(lines) + "\n"

"""``occupy.cxc``: a ChimeraX command script showing every class coloured by its local scale.

What it shows: each class's *input* map (the class map RELION wrote, the one the user knows), as a
surface coloured by its scale map on the fixed range 0–1 with the viridis palette and one shared
colour key.  A weak or partly occupied region is then visible as such (dark blue, often fragmented)
instead of being hidden, as it would be in the equalised map that brings every region to full
strength; the equalised maps are listed (commented out) for whoever wants them.  The scale maps are
opened for the colouring and hidden.  The classes are tiled side by side in class order.

Contour rule, the same for every class: the level of each class is its solvent mean + 3 sd of the
solvent noise of its own full-resolution map (:data:`~occupy_relion.report.CONTOUR_SIGMAS`), i.e.
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

import math
import os
from pathlib import Path

from . import CONTOUR_SIGMAS, SCRIPT_NAME, ClassSummary
from .style import VIRIDIS_STOPS, chimerax_palette, fmt, is_missing


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


def _quoted(text: str) -> str:
    """A ChimeraX command argument (paths and names may contain spaces)."""
    return '"' + text.replace('"', "'") + '"'


def _level(summary: ClassSummary) -> tuple[float | None, str]:
    """The contour level of a class and how it was derived."""
    if not is_missing(summary.contour_level) and math.isfinite(summary.contour_level):
        return float(summary.contour_level), f"solvent mean + {CONTOUR_SIGMAS:g} × solvent noise sd"
    mean, sd = summary.settings.get("solvent_mean"), summary.settings.get("solvent_sd")
    if not is_missing(mean) and not is_missing(sd) and math.isfinite(float(mean) + float(sd)):
        return float(mean) + CONTOUR_SIGMAS * float(sd), f"solvent mean + {CONTOUR_SIGMAS:g} × low-passed solvent sd"
    return None, "ChimeraX's default level"


def _model_range(ids: list[int]) -> str:
    """ChimeraX model spec of a list of model numbers, e.g. '#1-3' or '#1,3,4'."""
    if not ids:
        return ""
    if ids == list(range(ids[0], ids[-1] + 1)):
        return f"#{ids[0]}" if len(ids) == 1 else f"#{ids[0]}-{ids[-1]}"
    return "#" + ",".join(str(i) for i in ids)


def chimerax_script(classes: list[ClassSummary], *, job_dir, project_dir) -> str:
    """The text of ``occupy.cxc`` for ``classes`` (paths resolved against ``project_dir``)."""
    job_dir, project_dir = Path(job_dir), Path(project_dir)
    palette = chimerax_palette()
    shown = []  # (summary, display name, display label, scale name or None, level, level rule)
    notes, equalised_lines = [], []
    for summary in classes:
        tag = f"class {summary.number}"
        candidates = [(summary.input_path, "input map"), (summary.equalised_path, "equalised map")]
        display = None
        for path, label in candidates:
            if path:
                name, real = _relative_to_job(path, job_dir, project_dir)
                if real.is_file():
                    display = (name, label)
                    break
        if display is None:
            notes.append(f"# {tag}: neither its input nor its equalised map exists; not shown")
            continue
        scale = None
        if summary.scale_path:
            name, real = _relative_to_job(summary.scale_path, job_dir, project_dir)
            scale = name if real.is_file() else None
        if scale is None:
            notes.append(f"# {tag}: no scale map; shown uncoloured")
        if display[1] == "input map" and summary.equalised_path:
            name, real = _relative_to_job(summary.equalised_path, job_dir, project_dir)
            if real.is_file():
                equalised_lines.append(f"# open {_quoted(name)} name {_quoted(tag + ' equalised')}")
        if display[1] != "input map":
            notes.append(f"# {tag}: its input map is missing; its equalised map is shown instead")
        level, rule = _level(summary)
        shown.append((summary, display[0], display[1], scale, level, rule))

    lines = [
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
    if not shown:
        lines += ["#", "# No class map exists, so there is nothing to show."]
        lines += notes
        return "\n".join(lines) + "\n"
    lines += notes
    count = len(shown)
    display_ids = list(range(1, count + 1))
    scale_ids = {}
    next_id = count + 1
    for summary, _name, _label, scale, _level_value, _rule in shown:
        if scale is not None:
            scale_ids[summary.number] = next_id
            next_id += 1
    lines += ["", "close", "set bgColor white", "lighting soft", "", "# the class maps (shown)"]
    for model, (summary, name, label, _scale, _level_value, _rule) in zip(display_ids, shown):
        lines.append(f"open {_quoted(name)} name {_quoted(f'class {summary.number}')}")
    if scale_ids:
        lines += ["", "# their scale maps (hidden: only used for the colouring)"]
        for summary, _name, _label, scale, _level_value, _rule in shown:
            if scale is not None:
                lines.append(f"open {_quoted(scale)} name {_quoted(f'class {summary.number} scale')}")
        lines.append(f"hide {_model_range(sorted(scale_ids.values()))} models")
    lines += ["", "# the same contour rule for every class (ChimeraX has no end-of-line comments: rules above)"]
    for model, (summary, _name, label, _scale, level, rule) in zip(display_ids, shown):
        lines.append(f"# class {summary.number} ({label}): {rule}")
        option = f" level {level:.6g}" if level is not None else ""
        lines.append(f"volume #{model}{option} style surface step 1")
    if count > 1:
        lines += ["", "# side by side in class order (rows from the top left); scale maps follow their class",
                  f"tile {_model_range(display_ids)}"]
        for model, (summary, *_rest) in zip(display_ids, shown):
            if summary.number in scale_ids:
                lines.append(f"view position #{scale_ids[summary.number]} sameAsModels #{model}")
    if scale_ids:
        lines += ["", "# colour by scale: one palette, fixed range 0-1"]
        for model, (summary, *_rest) in zip(display_ids, shown):
            if summary.number in scale_ids:
                lines.append(f"color sample #{model} map #{scale_ids[summary.number]} palette {palette} range 0,1")
        key = " ".join(f"{colour}:{value:g}" for value, colour in VIRIDIS_STOPS)
        lines += ["", "# one colour key for all classes",
                  f"key {key} pos 0.88,0.08 size 0.025,0.4",
                  '2dlabels text "scale (relative occupancy)" xpos 0.70 ypos 0.03 size 16 color black']
    order = ", ".join(str(s.number) for s, *_rest in shown)
    lines += ['', f'2dlabels text {_quoted("classes " + order + " (in this order)")} xpos 0.02 ypos 0.95 size 16 color black',
              "view"]
    if equalised_lines:
        lines += ["", "# The equalised maps (every region brought to full strength), to open instead:"]
        lines += equalised_lines
    spec = _model_range(display_ids)
    lines += ["", f"# Levels used (for one common level instead:  volume {spec} level <value>):"]
    for summary, *_rest, level, rule in shown:
        lines.append(f"#   class {summary.number}: {fmt(level)}  ({rule})")
    return "\n".join(lines) + "\n"

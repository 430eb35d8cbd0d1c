"""``occupy.cxc``: a ChimeraX command script showing every class coloured by its occupancy.

What it shows: each class's *input* map (the class map RELION wrote, the one the user knows) as a
surface.  With a region analysis (the normal case) the surface is coloured by the class's
``classNNN_occupancy.mrc``: every part of the molecule reads its own edge-free occupancy in that
class (a region's, or 1 for the constant part), carried out past the rim of density, so the colour of
what is drawn is the occupancy of the part it belongs to, not the height of the contour.  Without one
(the analysis failed) it is coloured by the class's scale map.  One palette (viridis, fixed 0–1) and
one colour key for all classes.  The colouring maps are opened hidden, and so are the region masks
(``regionNNN_mask.mrc``, ``variable_mask.mrc``), to be shown on demand.

Contour rule, one for every class: with a region analysis, its solvent mean + 0.3 × the density of
full occupancy on the common reference (:func:`~occupy_relion.report.summary.occupancy_contour`): a
complete class shows all of its domains, a half-occupied domain shows thinner, an absent one not at
all, and the noise (a few % of full density) stays hidden.  Without one: solvent mean + 3 sd of the
solvent noise of the class's own map.  The numbers are written on each line so they can be changed.

All maps stay where they are: nothing moves or tiles models (``tile`` would separate a map from its
hidden colouring map, and ``color sample`` would then paint from the wrong place).  The classes lie
on top of one another; the first is shown, and the script lists the one-line commands that show
another, or all.

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
from .summary import CONTOUR_FRACTION, CONTOUR_SIGMAS, common_reference, occupancy_contour


@dataclass(frozen=True)
class _Shown:
    """A class the script shows: which map, coloured by which map, at which level."""

    number: int
    path: str  # relative to the job directory
    label: str  # "input map" or "equalised map"
    colouring: str | None  # the map it is coloured by, relative to the job directory; None: uncoloured
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


def _choose(classes: Sequence[ClassResult], job_dir: Path, project_dir: Path,
            regions: RegionsResult | None) -> tuple[list[_Shown], list[str], list[str]]:
    """(classes shown, notes about the others, commented-out lines opening the equalised maps)."""
    occupancy_maps = dict(regions.occupancy_maps) if regions is not None else {}
    shown, notes, equalised_lines = [], [], []
    for result in classes:
        tag = f"class {result.number}"
        input_name = _existing(result.input_path, job_dir, project_dir)
        equalised_name = _existing(result.outputs.equalised, job_dir, project_dir)
        if input_name is None and equalised_name is None:
            notes.append(f"# {tag}: neither its input nor its equalised map exists; not shown")
            continue
        if input_name is not None and equalised_name is not None:
            equalised_lines.append(f"# open {_quoted(equalised_name)} name {_quoted(tag + ' equalised')}")
        if input_name is None:
            notes.append(f"# {tag}: its input map is missing; its equalised map is shown instead")
        label = "input map" if input_name else "equalised map"
        path = input_name or equalised_name or ""
        if regions is not None:
            colouring = _existing(occupancy_maps.get(result.number), job_dir, project_dir)
            if colouring is None:
                notes.append(f"# {tag}: no occupancy map; shown uncoloured")
            level = occupancy_contour(result, classes, regions.analysis.full_level)
            rule = (f"solvent mean + {CONTOUR_FRACTION:g} × full-occupancy density "
                    f"({fmt(regions.analysis.full_level, 3)} × common reference {fmt(common_reference(classes), 4)})")
        else:
            colouring = _existing(result.outputs.scale, job_dir, project_dir)
            if colouring is None:
                notes.append(f"# {tag}: no scale map; shown uncoloured")
            level = result.view.contour_level
            rule = f"solvent mean + {CONTOUR_SIGMAS:g} × {result.view.contour_basis}"
        shown.append(_Shown(result.number, path, label, colouring, level, rule))
    return shown, notes, equalised_lines


def _preamble(job_dir: Path, regions: RegionsResult | None) -> list[str]:
    lines = [
        f"# {SCRIPT_NAME}, written by occupy_relion: every class coloured by "
        + ("the occupancy of each part of it" if regions is not None else "its local scale"),
        "# (0 = empty, 1 = as strong as the constant, fully occupied part of the molecule).",
        "#",
        "# Open it from the job directory:      chimerax occupy.cxc",
        f"#   or from the project directory:     chimerax {Path(job_dir).as_posix().rstrip('/')}/{SCRIPT_NAME}",
        "#   or in ChimeraX: File > Open, or the command  open /path/to/occupy.cxc",
        "# ChimeraX runs a .cxc file from the file's own directory, so the paths below are relative",
        "# to this job directory and keep working when the project is moved.",
        "#",
    ]
    if regions is not None:
        lines += [
            "# Shown: each class's input map, coloured by its occupancy map (hidden): each region reads its",
            "# occupancy in that class, the constant part 1; one palette on the fixed range 0-1 (viridis:",
            "# dark blue = empty, teal = half, yellow = full).  Contour of every class: its solvent mean +",
            f"# {CONTOUR_FRACTION:g} × the density of full occupancy (level on each line).",
            "# The classes lie on top of one another (nothing is moved); one is shown at a time.",
        ]
        analysis = regions.analysis
        if analysis.regions:
            lines += ["#", "# Regions (occupancy per class):"]
            for region in analysis.regions:
                values = ", ".join(f"class {n} {v:.2f}" for n, v in zip(region.classes, region.occupancy))
                lines.append(f"#   region {region.number} ({region.volume_A3:.0f} Å³): {values}"
                             f"  ({region.description})")
        else:
            lines += ["#", "# No region differs in occupancy between the classes."]
        ranked = ", ".join(f"class {c.class_number} {c.completeness:.2f}"
                           for c in sorted(analysis.completeness, key=lambda c: c.rank))
        lines.append(f"# Completeness (most complete first): {ranked}")
    else:
        lines += [
            "# No region analysis was made: each class's input map is coloured by its scale map (hidden)",
            "# with one palette on the fixed range 0-1.  Contour of every class: its solvent mean +",
            f"# {CONTOUR_SIGMAS:g} × its solvent noise sd (level on each line).",
        ]
    lines.append("# Note: this script first closes every model already open in ChimeraX.")
    return lines


def _masks(regions: RegionsResult | None, job_dir: Path, project_dir: Path) -> list[tuple[str, str]]:
    """(script path, model name) of every region mask that exists, then the variable mask."""
    if regions is None:
        return []
    named = [(path, f"region {number} mask")
             for number, path in zip((r.number for r in regions.analysis.regions), regions.region_masks)]
    if regions.variable_mask:
        named.append((regions.variable_mask, "variable mask"))
    found = []
    for path, name in named:
        existing = _existing(path, job_dir, project_dir)
        if existing is not None:
            found.append((existing, name))
    return found


def _commands(shown: list[_Shown], masks: list[tuple[str, str]], colour_kind: str) -> list[str]:
    """Open, contour and colour the shown classes (model i is shown[i - 1]; colouring maps, then masks
    follow), show the first class, list how to show the others."""
    display_ids = list(range(1, len(shown) + 1))
    colour_ids: dict[int, int] = {}
    for entry in shown:
        if entry.colouring is not None:
            colour_ids[entry.number] = len(shown) + len(colour_ids) + 1
    mask_ids = list(range(len(shown) + len(colour_ids) + 1, len(shown) + len(colour_ids) + len(masks) + 1))
    lines = ["", "close", "set bgColor white", "lighting soft", "",
             "# the class maps (all in one place: nothing below moves a model)"]
    lines += [f"open {_quoted(entry.path)} name {_quoted(entry.name)}" for entry in shown]
    if colour_ids:
        lines += ["", f"# their {colour_kind} maps (hidden: only used for the colouring)"]
        lines += [f"open {_quoted(entry.colouring)} name {_quoted(entry.name + ' ' + colour_kind)}"
                  for entry in shown if entry.colouring is not None]
        lines.append(f"hide {_model_range(sorted(colour_ids.values()))} models")
    if masks:
        lines += ["", "# the regions as soft masks (hidden; to see one, e.g.:  volume "
                  f"#{mask_ids[0]} show level 0.5 style mesh)"]
        lines += [f"open {_quoted(path)} name {_quoted(name)}" for path, name in masks]
        lines.append(f"hide {_model_range(mask_ids)} models")
    lines += ["", "# one contour rule for every class (ChimeraX has no end-of-line comments: rules above)"]
    for model, entry in zip(display_ids, shown):
        lines += [f"# {entry.name} ({entry.label}): {entry.rule}",
                  f"volume #{model} level {entry.level:.6g} style surface step 1"]
    if colour_ids:
        lines += ["", f"# colour by {colour_kind}: one palette, fixed range 0-1"]
        lines += [f"color sample #{model} map #{colour_ids[entry.number]} palette {chimerax_palette()} range 0,1"
                  for model, entry in zip(display_ids, shown) if entry.number in colour_ids]
        key = " ".join(f"{colour}:{value:g}" for value, colour in VIRIDIS_STOPS)
        lines += ["", "# one colour key for all classes", f"key {key} pos 0.88,0.08 size 0.025,0.4",
                  f"2dlabels text {_quoted(colour_kind)} xpos 0.80 ypos 0.03 size 16 color black"]
    all_ids = _model_range(display_ids)
    if len(shown) > 1:
        lines += ["", f"# one class at a time: {shown[0].name} first", f"hide {_model_range(display_ids[1:])} models"]
    order = ", ".join(str(entry.number) for entry in shown)
    title = (f"classes {order} (models {all_ids}): one shown at a time, {shown[0].name} first; others: see occupy.cxc"
             if len(shown) > 1 else shown[0].name)
    lines += ["", f"2dlabels text {_quoted(title)} xpos 0.02 ypos 0.95 size 16 color black", "view"]
    if len(shown) > 1:
        lines += ["", "# To show another class (they share one place, so map and colouring stay together):"]
        for model, entry in zip(display_ids, shown):
            lines.append(f"#   {entry.name}:  hide {all_ids} models; show #{model} models")
        lines.append(f"#   all at once:  show {all_ids} models")
    return lines


def chimerax_script(classes: Sequence[ClassResult], *, job_dir: str | os.PathLike,
                    project_dir: str | os.PathLike, regions: RegionsResult | None = None) -> str:
    """The text of ``occupy.cxc`` for ``classes`` (paths resolved against ``project_dir``); coloured by
    the occupancy maps of ``regions``, or by the scale maps without a region analysis."""
    job_dir, project_dir = Path(job_dir), Path(project_dir)
    shown, notes, equalised_lines = _choose(classes, job_dir, project_dir, regions)
    lines = _preamble(job_dir, regions)
    if not shown:
        return "\n".join([*lines, "#", "# No class map exists, so there is nothing to show.", *notes]) + "\n"
    colour_kind = "occupancy" if regions is not None else "scale"
    lines += notes + _commands(shown, _masks(regions, job_dir, project_dir), colour_kind)
    if equalised_lines:
        lines += ["", "# The equalised maps (every region brought to full strength), to open instead:"]
        lines += equalised_lines
    spec = _model_range(list(range(1, len(shown) + 1)))
    lines += ["", f"# Levels used (for one common level instead:  volume {spec} level <value>):"]
    lines += [f"#   {entry.name}: {fmt(entry.level)}  ({entry.rule})" for entry in shown]
    return "\n".join(lines) + "\n"

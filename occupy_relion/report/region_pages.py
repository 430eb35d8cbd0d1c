"""The pages of logfile.pdf that answer the question across classes: which class has which region,
and how much of it (the first page), and the classes side by side (the comparison page).

They only draw: the numbers are the region analysis' own (``RegionsResult.analysis``: each region's
edge-free occupancy per class, each class's completeness), the images the small slices the summary
step cut (``RegionsResult.view``).  Images of one page share one axes laid out in Å (cheap to draw).
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ..regions import RegionAnalysis
from ..result import ClassResult, RegionsResult, RegionsSlice, RegionsView, RunDescription
from ..text import fmt_percent, is_missing
from .layout import PAGE_SIZE, footer, new_page, nice_length
from .style import HEADER_COLOUR, SCALE_CMAP, SOLVENT_GREY, class_colour

#: regions drawn as small views on the first page (the table lists them all, up to the page's room)
VIEW_REGIONS = 4
#: outline colours of the regions (by region number), on grey and on the scale colours alike
REGION_COLOURS = ("#e41a1c", "#ff7f00", "#f781bf", "#a65628", "#984ea3", "#e7298a")
#: table rows that fit on the first page
TABLE_REGIONS = 12

EDGE_FREE = ("edge-free: read where no stronger density is within the low-pass, so the fall-off at the "
             "rim of density does not pull it down")


def region_colour(number: int) -> str:
    """The outline colour of region ``number`` on every page."""
    return REGION_COLOURS[(int(number) - 1) % len(REGION_COLOURS)]


def _text_colour(value: float) -> str:
    """Black on the light end of the scale colours, white on the dark end."""
    r, g, b, _a = colormaps[SCALE_CMAP](float(np.clip(value, 0, 1)))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def _class_heading(c: ClassResult | None, number: int) -> str:
    if c is None or is_missing(c.distribution):
        return f"Class {number}"
    return f"Class {number}\n{fmt_percent(c.distribution)} %"


# ---------------------------------------------------------------------------------------------
# the regions × classes table


def _occupancy_table(fig: Figure, analysis: RegionAnalysis, classes: dict[int, ClassResult], x0: float, top: float,
                     width: float) -> float:
    """Regions (rows) × classes (columns), each cell coloured by the region's occupancy in the class,
    then the classes' completeness, edge-free median and rank.  Returns the table's bottom."""
    numbers = analysis.classes
    fixed = [("Region", 0.07), ("Volume\n(nm³)", 0.075), ("Centre x, y, z\n(Å)", 0.13)]
    fixed_width = sum(w for _, w in fixed)
    cell = min(0.075, (width - fixed_width) / max(1, len(numbers)))
    header_h, row_h = 0.045, 0.03
    total = fixed_width + cell * len(numbers)
    fig.add_artist(Rectangle((x0, top - header_h), total, header_h, transform=fig.transFigure, color=HEADER_COLOUR,
                             lw=0))
    x = x0
    for name, w in fixed:
        fig.text(x + 0.005, top - header_h / 2, name, color="white", fontweight="bold", fontsize=7, va="center",
                 linespacing=1.15)
        x += w
    for k, number in enumerate(numbers):
        cx = x0 + fixed_width + (k + 0.5) * cell
        fig.text(cx, top - header_h / 2, _class_heading(classes.get(number), number), color="white",
                 fontweight="bold", fontsize=7, ha="center", va="center", linespacing=1.15)
        fig.add_artist(Rectangle((x0 + fixed_width + k * cell + 0.003, top - 0.007), cell - 0.006, 0.005,
                                 transform=fig.transFigure, color=class_colour(number), lw=0))
    y = top - header_h
    shown = analysis.regions[:TABLE_REGIONS]
    for index, region in enumerate(shown):
        if index % 2:
            fig.add_artist(Rectangle((x0, y - row_h), fixed_width, row_h, transform=fig.transFigure,
                                     color="#eef1f5", lw=0))
        fig.add_artist(Rectangle((x0 + 0.005, y - row_h / 2 - 0.006), 0.012, 0.012, transform=fig.transFigure,
                                 fill=False, edgecolor=region_colour(region.number), lw=1.5))
        fig.text(x0 + 0.022, y - row_h / 2, str(region.number), fontsize=8.5, fontweight="bold", va="center")
        fig.text(x0 + fixed[0][1] + fixed[1][1] - 0.006, y - row_h / 2, f"{region.volume_A3 / 1000:.1f}",
                 fontsize=8, va="center", ha="right")
        centre = ", ".join(f"{v:.0f}" for v in region.centre_A)
        fig.text(x0 + fixed[0][1] + fixed[1][1] + 0.006, y - row_h / 2, centre, fontsize=7.5, va="center")
        for k, value in enumerate(region.occupancy):
            left = x0 + fixed_width + k * cell
            fig.add_artist(Rectangle((left + 0.002, y - row_h + 0.002), cell - 0.004, row_h - 0.004,
                                     transform=fig.transFigure, color=colormaps[SCALE_CMAP](float(value)), lw=0))
            fig.text(left + cell / 2, y - row_h / 2, f"{value:.2f}", fontsize=9, fontweight="bold", ha="center",
                     va="center", color=_text_colour(value))
        y -= row_h
    if len(analysis.regions) > len(shown):
        fig.text(x0, y - 0.004, f"… and {len(analysis.regions) - len(shown)} more regions (occupancy.star)",
                 fontsize=7, color="#666666", va="top")
        y -= 0.02
    if not analysis.regions:
        fig.text(x0 + 0.005, y - row_h / 2, "No region differs in occupancy between the classes"
                 if len(numbers) > 1 else "No partial region", fontsize=8, color="#555555", va="center")
        y -= row_h
    fig.add_artist(Line2D([x0, x0 + total], [y, y], transform=fig.transFigure, color=HEADER_COLOUR, lw=0.8))
    completeness = {c.class_number: c for c in analysis.completeness}
    rows = (("Completeness", lambda n: completeness[n].completeness, True),
            ("Median (edge-free)", lambda n: completeness[n].median, True),
            ("Below 0.5", lambda n: completeness[n].partial_fraction, False),
            ("Rank", lambda n: float(completeness[n].rank), False))
    for label, value_of, coloured in rows:
        fig.text(x0 + 0.005, y - row_h / 2, label, fontsize=7.5, fontweight="bold" if coloured else "normal",
                 va="center")
        for k, number in enumerate(numbers):
            value = value_of(number)
            left = x0 + fixed_width + k * cell
            if coloured:
                fig.add_artist(Rectangle((left + 0.002, y - row_h + 0.002), cell - 0.004, row_h - 0.004,
                                         transform=fig.transFigure, color=colormaps[SCALE_CMAP](float(value)), lw=0))
                text, colour = f"{value:.2f}", _text_colour(value)
            elif label == "Rank":
                text, colour = str(int(value)), "black"
            else:
                text, colour = f"{fmt_percent(value, 0)} %", "black"
            fig.text(left + cell / 2, y - row_h / 2, text, fontsize=8.5, ha="center", va="center", color=colour,
                     fontweight="bold" if label in ("Completeness", "Rank") else "normal")
        y -= row_h
    fig.add_artist(Line2D([x0, x0 + total], [y, y], transform=fig.transFigure, color=HEADER_COLOUR, lw=0.8))
    return y


def _descriptions(fig: Figure, analysis: RegionAnalysis, x0: float, top: float, width: float) -> float:
    """One line per region: what it is, in words."""
    lines = [f"Region {r.number}: {r.description}" for r in analysis.regions[:TABLE_REGIONS]]
    best = analysis.ranked_classes[0] if analysis.ranked_classes else None
    if best is not None and len(analysis.classes) > 1:
        lines.append(f"Most complete: class {best} (completeness {analysis.completeness_of(best).completeness:.2f}).")
    left_out = [f"{volume / 1000:.1f} nm³ of {what}" for volume, what in (
        (analysis.weak_volume_A3, "weak density (absent in every class)"),
        (analysis.scattered_volume_A3, "scattered blobs (noise that passed the confidence)")) if volume > 0]
    if left_out:
        lines.append(f"Left out of the molecule: {' and '.join(left_out)}.")
    chars = int(width * PAGE_SIZE[0] * 72 / (7.5 * 0.55))
    wrapped = [part for line in lines for part in _wrap(line, chars)]
    fig.text(x0, top, "\n".join(wrapped), fontsize=7.5, va="top", linespacing=1.45)
    return top - len(wrapped) * 7.5 * 1.45 / 72 / PAGE_SIZE[1]


def _wrap(text: str, chars: int) -> list[str]:
    from .layout import wrap

    return wrap(text, chars)


def _files(fig: Figure, regions: RegionsResult, x0: float, top: float) -> float:
    """What the job wrote for the regions, and what each file is for."""
    rows = [(Path(path).name, f"region {r.number}: soft mask for RELION (subtraction, focused Class3D)")
            for r, path in zip(regions.analysis.regions, regions.region_masks)][:4]
    if len(regions.region_masks) > 4:
        rows.append(("…", f"{len(regions.region_masks) - 4} more region masks"))
    if regions.variable_mask:
        rows.append((Path(regions.variable_mask).name, "every region in one soft mask"))
    if regions.occupancy_maps:
        first = Path(regions.occupancy_maps[0][1]).name
        rows.append((first if len(regions.occupancy_maps) == 1 else first.replace("001", "NNN", 1),
                     "each part's occupancy per class: what occupy.cxc colours by"))
    if not rows:
        return top
    fig.text(x0, top, "Files", fontsize=8.5, fontweight="bold", color=HEADER_COLOUR, va="top")
    line = 7.5 * 1.5 / 72 / PAGE_SIZE[1]
    y = top - 1.6 * line
    fig.text(x0, y, "\n".join(name for name, _ in rows), fontsize=7.5, va="top", linespacing=1.5, family="monospace")
    fig.text(x0 + 0.16, y, "\n".join(what for _, what in rows), fontsize=7.5, va="top", linespacing=1.5,
             color="#444444")
    return y - len(rows) * line


# ---------------------------------------------------------------------------------------------
# small views: slices of every class's occupancy with the region outlines


def _image_rgb(occupancy: np.ndarray, molecule: np.ndarray, grey: bool) -> np.ndarray:
    """Occupancy in the scale colours (or grey), light grey outside the molecule (colour only)."""
    values = np.clip(np.nan_to_num(occupancy), 0, 1)
    if grey:
        return np.repeat(values[..., None], 3, axis=2)
    rgb = colormaps[SCALE_CMAP](values)[..., :3]
    return np.where(molecule[..., None], rgb, np.array(SOLVENT_GREY))


def _draw_slice(ax: Axes, view: RegionsSlice, k: int, left: float, bottom: float, size: float,
                grey: bool, regions: Sequence[int]) -> None:
    """Class ``k``'s image of ``view`` in a square cell of ``size`` Å at (left, bottom), outlines of
    ``regions`` on it."""
    e = view.extent_A
    w, h = e[1] - e[0], e[3] - e[2]
    scale = size / max(w, h)
    x0, y0 = left + (size - w * scale) / 2, bottom + (size - h * scale) / 2
    extent = (x0, x0 + w * scale, y0, y0 + h * scale)
    ax.imshow(_image_rgb(view.occupancy[k], view.molecule, grey), origin="lower", extent=extent,
              interpolation="none")
    for number in regions:
        inside = view.labels == number
        if inside.any() and not inside.all():
            ax.contour(inside.astype(np.float32), levels=[0.5], colors=region_colour(number), linewidths=1.0,
                       origin="lower", extent=extent)


def _views_axes(fig: Figure, box: tuple[float, float, float, float], rows: int, columns: int,
                gap: float = 0.08) -> tuple[Axes, float, float]:
    """One axes for a grid of square cells (unit cell size 1) filling ``box`` (figure fractions)."""
    left, bottom, width, height = box
    span_w, span_h = columns + (columns - 1) * gap, rows + (rows - 1) * gap
    aspect = PAGE_SIZE[0] * width / (PAGE_SIZE[1] * height)
    if span_w / span_h > aspect:
        new_h = height * (span_h / span_w) * aspect
        bottom, height = bottom + height - new_h, new_h
    else:
        new_w = width * (span_w / span_h) / aspect
        width = new_w
    ax = fig.add_axes((left, bottom, width, height))
    ax.set_xlim(0, span_w)
    ax.set_ylim(0, span_h)
    ax.set_axis_off()
    return ax, span_w, span_h


def _cell_origin(row: int, column: int, rows: int, gap: float = 0.08) -> tuple[float, float]:
    return column * (1 + gap), (rows - 1 - row) * (1 + gap)


def _slice_label(view: RegionsSlice) -> str:
    horizontal, vertical, cut = view.axes
    return f"{view.plane} at {cut} = {view.position_A:.0f} Å"


def _scale_bar(ax: Axes, view: RegionsSlice, left: float, bottom: float, colour: str) -> None:
    """A bar of a round length in Å in the lower left of a cell (cell size 1 = the window's longest side)."""
    e = view.extent_A
    longest = max(e[1] - e[0], e[3] - e[2])
    length = nice_length(longest)
    ax.plot([left + 0.05, left + 0.05 + length / longest], [bottom + 0.04] * 2, color=colour, lw=1.6,
            solid_capstyle="butt")
    ax.text(left + 0.05 + 0.5 * length / longest, bottom + 0.06, f"{length:g} Å", color=colour, fontsize=5.5,
            ha="center", va="bottom")


def _colour_bar(fig: Figure, box: tuple[float, float, float, float], grey: bool, label: str) -> None:
    ax = fig.add_axes(box)
    ax.imshow(np.linspace(0, 1, 256)[None, :], cmap="gray" if grey else SCALE_CMAP, vmin=0, vmax=1, aspect="auto",
              extent=(0, 1, 0, 1), interpolation="none")
    ax.set_yticks([])
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1])
    ax.tick_params(labelsize=6.5, length=2)
    ax.set_xlabel(label, fontsize=7, labelpad=2)


def _region_views(fig: Figure, view: RegionsView, analysis: RegionAnalysis, box: tuple[float, float, float, float]
                  ) -> None:
    """Per region (rows, at most VIEW_REGIONS), every class's occupancy (columns) in the plane through
    the region's centre, the region outlined.  No region: the comparison's xy plane."""
    slices = list(zip(analysis.regions[:VIEW_REGIONS], view.regions[:VIEW_REGIONS]))
    rows_views: list[tuple[str, RegionsSlice, list[int]]] = [
        (f"Region {region.number}\n{_slice_label(s)}", s, [region.number]) for region, s in slices]
    if len(analysis.regions) == 1:  # room for all three planes through it (the comparison's planes)
        number = analysis.regions[0].number
        rows_views = [(f"Region {number}\n{_slice_label(s)}", s, [number]) for s in view.comparison]
    if not rows_views and view.comparison:
        rows_views = [(f"Molecule\n{_slice_label(view.comparison[0])}", view.comparison[0], [])]
    if not rows_views:
        return
    columns = len(view.classes)
    ax, _span_w, span_h = _views_axes(fig, box, len(rows_views), columns)
    for row, (label, s, numbers) in enumerate(rows_views):
        for k, number in enumerate(view.classes):
            x, y = _cell_origin(row, k, len(rows_views))
            _draw_slice(ax, s, k, x, y, 1.0, False, numbers)
            if row == 0:
                ax.text(x + 0.5, span_h + 0.03, f"Class {number}", ha="center", va="bottom", fontsize=8,
                        fontweight="bold", color=class_colour(number))
        x, y = _cell_origin(row, 0, len(rows_views))
        ax.text(x - 0.04, y + 0.5, label, rotation=90, ha="right", va="center", fontsize=6.5, color="#444444",
                linespacing=1.2)
        _scale_bar(ax, s, x, y, "black")


def answer_page(run: RunDescription, classes: Sequence[ClassResult], regions: RegionsResult, page: int,
                pages: int) -> Figure:
    """Page 1 with a region analysis: the regions × classes table and the regions in every class."""
    analysis = regions.analysis
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    count = f"{len(analysis.classes)} class{'es' if len(analysis.classes) != 1 else ''}"
    found = f"{len(analysis.regions)} region{'s' if len(analysis.regions) != 1 else ''}"
    question = "which class has which part, and how much" if len(analysis.classes) > 1 else "which parts are partial"
    fig = new_page(f"occupy_relion · {question}",
                   f"{run.job_dir.rstrip('/')}/   ·   {when}   ·   {count}   ·   {found}   ·   occupancy on one "
                   "common reference (1 = the constant, fully occupied part)")
    by_number = {c.number: c for c in classes}
    fig.text(0.04, 0.885, "Occupancy of each region in each class", fontsize=10, fontweight="bold",
             color=HEADER_COLOUR, va="top")
    bottom = _occupancy_table(fig, analysis, by_number, 0.04, 0.86, 0.44)
    bottom = _descriptions(fig, analysis, 0.04, bottom - 0.02, 0.44)
    bottom = _files(fig, regions, 0.04, bottom - 0.03)
    _colour_bar(fig, (0.06, max(0.1, bottom - 0.07), 0.3, 0.02), False, "occupancy (0 = empty, 1 = full)")
    if regions.view is not None:
        fig.text(0.53, 0.885, "Each region in every class (occupancy; region outlined)", fontsize=10,
                 fontweight="bold", color=HEADER_COLOUR, va="top")
        _region_views(fig, regions.view, analysis, (0.56, 0.08, 0.40, 0.75))
    footer(fig, f"Occupancy of a region in a class: its median scale over its core, {EDGE_FREE}, divided by the full "
                f"level {analysis.full_level:.3f} (the constant part's), clipped to 0–1.  Completeness: the occupancy "
                "of the whole molecule, regions and constant part weighted by their volume.  Masks: "
                "regionNNN_mask.mrc, variable_mask.mrc; ChimeraX: occupy.cxc.", f"{page} / {pages}")
    return fig


def comparison_page(classes: Sequence[ClassResult], regions: RegionsResult, page: int, pages: int) -> Figure:
    """The classes side by side: the same three planes, one grey scale, the region outlines."""
    analysis, view = regions.analysis, regions.view
    fig = new_page("Classes side by side",
                   "the same planes through the centre of the variable part, one grey scale (occupancy on the common "
                   "reference), every region outlined")
    assert view is not None
    numbers = [r.number for r in analysis.regions]
    columns = len(view.classes)
    ax, _span_w, span_h = _views_axes(fig, (0.08, 0.16, 0.86, 0.66), len(view.comparison), columns)
    for row, s in enumerate(view.comparison):
        for k, number in enumerate(view.classes):
            x, y = _cell_origin(row, k, len(view.comparison))
            _draw_slice(ax, s, k, x, y, 1.0, True, numbers)
            if row == 0:
                complete = analysis.completeness_of(number).completeness
                ax.text(x + 0.5, span_h + 0.03, f"Class {number}\ncompleteness {complete:.2f}", ha="center",
                        va="bottom", fontsize=8.5, fontweight="bold", color=class_colour(number), linespacing=1.3)
        x, y = _cell_origin(row, 0, len(view.comparison))
        ax.text(x - 0.04, y + 0.5, _slice_label(s), rotation=90, ha="right", va="center", fontsize=7.5,
                color="#444444")
        _scale_bar(ax, s, x, y, "white")
    _colour_bar(fig, (0.08, 0.1, 0.25, 0.018), True, "occupancy (scale / full level)")
    if numbers:
        fig.text(0.40, 0.11, "Outlines:", fontsize=7.5, va="center")
        for i, n in enumerate(numbers[:len(REGION_COLOURS)]):
            fig.add_artist(Line2D([0.45 + 0.07 * i, 0.465 + 0.07 * i], [0.11, 0.11], transform=fig.transFigure,
                                  color=region_colour(n), lw=2))
            fig.text(0.468 + 0.07 * i, 0.11, f"region {n}", fontsize=7.5, va="center")
    footer(fig, "Grey: each class's scale divided by the full level (the constant part's), on the one reference all "
                "classes share, so the same grey means the same occupancy in every class.  Planes through the centre "
                "of all regions (of the molecule without one), cropped to the molecule.", f"{page} / {pages}")
    return fig

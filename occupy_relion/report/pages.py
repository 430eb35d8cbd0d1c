"""The pages of logfile.pdf: the run, one page per class and, with ``--joint``, the comparison.

They only draw: every number comes from the results (``result.py``), whose report view the summary
step (``summary.py``) computed; labels come from ``labels.py``, numbers are written by ``text.fmt``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, NullLocator

from ..core import NoiseFloorSource
from ..labels import CLASS_FACT_LABELS, PARAMETER_LABELS, RUN_LABELS, SETTING_LABELS
from ..regions import ClassCompleteness
from ..result import ClassResult, RegionsResult, RunDescription
from ..text import MISSING, fmt, fmt_percent, is_missing
from .layout import (
    PAGE_SIZE,
    Column,
    Section,
    decade_label,
    draw_sections,
    draw_table,
    empty_panel,
    footer,
    new_page,
    nice_length,
    step_fill,
)
from .style import (
    CONFIDENCE_COLOUR,
    CONTOUR_COLOUR,
    DATA_COLOUR,
    HEADER_COLOUR,
    HISTOGRAM_FILL,
    MODEL_COLOUR,
    SCALE_CMAP,
    SOLVENT_GREY,
    WARNING_COLOUR,
    class_colour,
)
from .summary import CONTOUR_FRACTION, CONTOUR_SIGMAS, GREY_PERCENTILES, shared_settings

PLANES = (("xy", "x", "y", "z"), ("xz", "x", "z", "y"), ("yz", "y", "z", "x"))  # plane, horizontal, vertical, cut

#: the table of classes
TABLE_COLUMNS = (
    Column("Class", 0.06, "left"), Column("Input map", 0.25, "left"), Column("Distribution\n(%)", 0.08, "right"),
    Column("Resolution\n(Å)", 0.08, "right"), Column("Scale\nmedian", 0.07, "right"),
    Column("Scale\np05", 0.07, "right"), Column("Scale\np95", 0.07, "right"),
    Column("Partial\n< 0.5 (%)", 0.08, "right"), Column("Molecule\n(% of box)", 0.085, "right"),
    Column("Time\n(s)", 0.065, "right"),
)

#: the table of classes with a region analysis: its edge-free numbers instead of whole-molecule ones
EDGE_FREE_COLUMNS = (
    Column("Class", 0.06, "left"), Column("Input map", 0.25, "left"), Column("Distribution\n(%)", 0.08, "right"),
    Column("Resolution\n(Å)", 0.08, "right"), Column("Complete-\nness", 0.08, "right"),
    Column("Median\n(edge-free)", 0.08, "right"), Column("Below 0.5\n(edge-free, %)", 0.09, "right"),
    Column("Rank", 0.05, "right"), Column("Molecule\n(% of box)", 0.085, "right"), Column("Time\n(s)", 0.065, "right"),
)

MOLECULE = "confidence ≥ 0.5, scale ≥ 0.05"  # core.molecule_scale, in words


# ---------------------------------------------------------------------------------------------
# page 1: the run


def _run_sections(run: RunDescription) -> list[Section]:
    """The run and its parameters as titled sections of (label, text) rows."""
    version = f"{run.relion_version.version} ({run.relion_version.source})"
    rows = [(RUN_LABELS["input"], run.input), (RUN_LABELS["input_kind"], run.input_kind),
            (RUN_LABELS["model_path"], fmt(run.model_path)), (RUN_LABELS["relion_version"], version),
            (RUN_LABELS["job_dir"], run.job_dir), (RUN_LABELS["command_line"], run.command_line or MISSING),
            (RUN_LABELS["pixel_size"], fmt(run.pixel_size))]
    parameters = [(PARAMETER_LABELS[name], fmt(value)) for name, value in run.parameters]
    sections: list[Section] = [("Run", rows), ("Parameters", parameters)]
    if run.joint_reference is not None:
        sections.append(("Joint normalisation", [(RUN_LABELS["joint_reference"], fmt(run.joint_reference))]))
    return sections


def _settings_sections(classes: Sequence[ClassResult], regions: RegionsResult | None = None) -> list[Section]:
    """Derived settings shared by all classes, the names of those that differ, and the warnings."""
    if not classes:
        return []
    common, varying = shared_settings([c.settings for c in classes])
    rows = [(SETTING_LABELS[name], fmt(value)) for name, value in common]
    if regions is not None:
        rows.append(("Contour in ChimeraX", f"solvent mean + {CONTOUR_FRACTION:g} × full-occupancy density"))
        rows.append(("Full level (occupancy 1)", fmt(regions.analysis.full_level)))
        rows.append(("Molecule volume (Å³)", fmt(regions.analysis.molecule_volume_A3)))
    else:
        rows.append(("Contour in ChimeraX", f"solvent mean + {CONTOUR_SIGMAS:g} × solvent noise sd"))
    sections: list[Section] = [("Derived settings" + (" (all classes)" if len(classes) > 1 else ""), rows)]
    if varying:
        sections.append(("Per class (see the class pages)", [(", ".join(SETTING_LABELS[n] for n in varying), "")]))
    warnings = [(f"Class {c.number}: {w}", "") for c in classes for w in c.settings.warnings]
    if warnings:
        sections.append(("⚠ Warnings", warnings))
    return sections


def _fixed(value: float | None, decimals: int = 3) -> str:
    return MISSING if is_missing(value) else f"{float(value or 0):.{decimals}f}"


def _class_row(c: ClassResult) -> list[str]:
    s = c.statistics
    name = Path(c.input_path).name or MISSING
    if len(name) > 42:
        name = "…" + name[-41:]
    return [str(c.number), name, fmt_percent(c.distribution), _fixed(c.resolution, 2), _fixed(s.scale_median),
            _fixed(s.scale_p05), _fixed(s.scale_p95), fmt_percent(s.partial_fraction),
            fmt_percent(c.view.molecule_fraction), f"{c.seconds:.1f}"]


def _edge_free_row(c: ClassResult, completeness: ClassCompleteness | None) -> list[str]:
    """A class's row with the region analysis' edge-free numbers (– for a class it did not analyse)."""
    name = Path(c.input_path).name or MISSING
    if len(name) > 42:
        name = "…" + name[-41:]
    if completeness is None:
        numbers = [MISSING] * 4
    else:
        numbers = [_fixed(completeness.completeness), _fixed(completeness.median),
                   fmt_percent(completeness.partial_fraction), str(completeness.rank)]
    return [str(c.number), name, fmt_percent(c.distribution), _fixed(c.resolution, 2), *numbers,
            fmt_percent(c.view.molecule_fraction), f"{c.seconds:.1f}"]


def summary_page(run: RunDescription, classes: Sequence[ClassResult], pages: int,
                 regions: RegionsResult | None = None, page: int = 1) -> Figure:
    """The run page: one row per class, then what ran and with which settings.  With a region analysis
    the class numbers are its edge-free ones; without one, a note says why there is none."""
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    reference = "one joint reference for all classes (--joint)" if run.joint else "each class against its own reference"
    count = f"{len(classes)} class{'es' if len(classes) != 1 else ''}"
    title = "Run and settings" if regions is not None else "occupy_relion · local scale (relative occupancy)"
    fig = new_page(title, f"{run.job_dir.rstrip('/')}/   ·   {when}   ·   {count}   ·   scale maps: {reference}")
    fig.text(0.04, 0.885, "Classes", fontsize=10, fontweight="bold", color=HEADER_COLOUR, va="top")
    if regions is None:
        fig.text(0.96, 0.885, "No region analysis (see run.out): the numbers below are over each whole molecule, "
                 "rim of density included.", fontsize=7.5, color=WARNING_COLOUR, va="top", ha="right")
    if classes:
        if regions is not None:
            known = {c.class_number: c for c in regions.analysis.completeness}
            rows = [_edge_free_row(c, known.get(c.number)) for c in classes]
            columns = EDGE_FREE_COLUMNS
        else:
            rows, columns = [_class_row(c) for c in classes], TABLE_COLUMNS
        table_bottom = draw_table(fig, columns, rows, [class_colour(c.number) for c in classes], 0.86, 0.42,
                                  "… and {count} more classes: see their pages.")
    else:
        fig.text(0.04, 0.86, "No class was processed.", fontsize=9, color="#888888", va="top")
        table_bottom = 0.83
    text_top = table_bottom - 0.04
    draw_sections(fig, _run_sections(run), 0.04, 0.42, text_top, 0.05)
    draw_sections(fig, _settings_sections(classes, regions), 0.54, 0.42, text_top, 0.05)
    if regions is not None:
        explained = ("Completeness: the occupancy of the whole molecule (regions and constant part weighted by "
                     "volume); median and below 0.5: of the occupancy over the molecule's edge-free voxels, where "
                     "no stronger density is within the low-pass (the rim of density would pull them down).  Rank 1 "
                     "= most complete.  Molecule: share of the box (confidence ≥ 0.5, scale ≥ 0.05).")
    else:
        explained = ("Scale: local density relative to the full-occupancy reference, inside the molecule "
                     f"({MOLECULE}).  p05 / p95: 5th / 95th percentiles.  Partial: share of molecule voxels with "
                     "scale < 0.5.  Molecule: molecule voxels as a share of the box.")
    footer(fig, explained, f"{page} / {pages}")
    return fig


# ---------------------------------------------------------------------------------------------
# one page per class


def _scale_rgb(scale: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """Scale in the scale colours, light grey where the voxel is solvent (confidence < 0.5)."""
    rgb = colormaps[SCALE_CMAP](np.clip(np.nan_to_num(scale), 0, 1))[..., :3]
    return np.where((np.asarray(confidence) < 0.5)[..., None], np.array(SOLVENT_GREY), rgb)


def _slice_grid(fig: Figure, c: ClassResult) -> None:
    """Input, scale and equalised central slices (columns) in the xy, xz and yz planes (rows).

    All nine images share one axes (laid out in Å, one square cell per image): far cheaper than
    nine axes, and every slice is on the same Å scale.
    """
    view, slices = c.view, c.view.slices
    columns = (("Input map", slices.input, view.input_range), ("Scale", slices.scale, (0.0, 1.0)),
               ("Equalised map", slices.equalised, view.equalised_range))
    cell = max(max(np.shape(s)) for s in slices.input) * c.pixel_size
    gap = 0.05 * cell
    span = 3 * cell + 2 * gap
    height = 0.64
    ax = fig.add_axes((0.075, 0.205, height * PAGE_SIZE[1] / PAGE_SIZE[0], height))
    ax.set_xlim(0, span)
    ax.set_ylim(0, span)
    ax.set_axis_off()
    for col, (title, images, (vmin, vmax)) in enumerate(columns):
        x0 = col * (cell + gap)
        ax.text(x0 + cell / 2, span + 0.03 * cell, title, ha="center", va="bottom", fontsize=9.5,
                fontweight="bold", color=HEADER_COLOUR)
        for row, (plane, _horizontal, _vertical, cut) in enumerate(PLANES):
            image = images[row]
            w, h = image.shape[1] * c.pixel_size, image.shape[0] * c.pixel_size
            left = x0 + (cell - w) / 2
            bottom = span - row * (cell + gap) - cell + (cell - h) / 2
            extent = (left, left + w, bottom, bottom + h)
            if col == 1:
                ax.imshow(_scale_rgb(image, slices.confidence[row]), origin="lower", extent=extent,
                          interpolation="none")
            else:
                ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=extent,
                          interpolation="none")
            if col == 0:
                _input_marks(ax, image, view.contour_level, extent, f"{plane}  ({cut} = "
                             f"{view.box_shape[('z', 'y', 'x').index(cut)] // 2})", cell)
    _colour_bar(ax, cell, gap, span)
    notes = [f"Central slices through the box centre; grey: density ({GREY_PERCENTILES[0]:g}–"
             f"{GREY_PERCENTILES[1]:g} percentile of the slices).",
             "Scale: shown inside the molecule (confidence ≥ 0.5), light grey in the solvent.",
             f"Orange line: the ChimeraX contour, solvent mean + {CONTOUR_SIGMAS:g} × {view.contour_basis} "
             f"= {fmt(view.contour_level, 3)}."]
    fig.text(0.06, 0.115, "\n".join(notes), fontsize=6.8, color="#555555", va="top", linespacing=1.45)


def _input_marks(ax: Axes, image: np.ndarray, level: float, extent: tuple[float, float, float, float], label: str,
                 cell: float) -> None:
    """On an input slice: the ChimeraX contour, a scale bar in Å and the plane's name (instead of axes)."""
    left, right, bottom, top = extent
    w, h = right - left, top - bottom
    if image.min() < level < image.max():
        ax.contour(image, levels=[level], colors=CONTOUR_COLOUR, linewidths=0.6, origin="lower", extent=extent)
    length = nice_length(w)
    bx, by = left + 0.05 * w, bottom + 0.05 * h
    ax.plot([bx, bx + length], [by, by], color="white", lw=2, solid_capstyle="butt")
    ax.text(bx + length / 2, by + 0.03 * h, f"{length:g} Å", color="white", ha="center", va="bottom", fontsize=6.5)
    ax.text(-0.06 * cell, bottom + h / 2, label, rotation=90, ha="center", va="center", fontsize=8, color="#444444")


def _colour_bar(ax: Axes, cell: float, gap: float, span: float) -> None:
    """The scale colour bar under the scale column, in the same axes (a colorbar axes costs as much as a plot)."""
    bar_left, bar_width = cell + gap + 0.08 * cell, 0.84 * cell
    bar_top = -0.06 * cell
    bar_bottom = bar_top - 0.07 * cell
    ax.imshow(np.linspace(0, 1, 256)[None, :], cmap=SCALE_CMAP, vmin=0, vmax=1, aspect="auto", interpolation="none",
              extent=(bar_left, bar_left + bar_width, bar_bottom, bar_top), clip_on=False)
    ax.add_patch(Rectangle((bar_left, bar_bottom), bar_width, bar_top - bar_bottom, fill=False, lw=0.5,
                           edgecolor="#555555", clip_on=False))
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = bar_left + tick * bar_width
        ax.plot([x, x], [bar_bottom, bar_bottom - 0.02 * cell], color="#555555", lw=0.5, clip_on=False)
        ax.text(x, bar_bottom - 0.03 * cell, f"{tick:.2f}", ha="center", va="top", fontsize=7)
    ax.text(bar_left + bar_width / 2, bar_bottom - 0.14 * cell, "scale (relative occupancy)", ha="center", va="top",
            fontsize=7.5)
    ax.set_xlim(0, span)  # imshow of the bar must not widen the view
    ax.set_ylim(0, span)


def _histogram_right_edge(centres: np.ndarray, curve: np.ndarray, last: float) -> float:
    """Where the solvent histogram's x axis ends: well past the solvent and the rise of the confidence,
    but not all the way along a long molecular tail (which would squeeze the fit into a corner).
    """
    right = 10.0
    full = np.nonzero(curve >= 0.99)[0]
    if full.size:
        right = max(right, 2.0 * float(centres[full[0]]) + 2.0)
    return float(min(last, right))


def _solvent_panel(ax: Axes, c: ClassResult) -> None:
    """Histogram of the low-passed map with the fitted solvent Gaussian and the confidence curve."""
    h = c.view.solvent
    step_fill(ax, h.edges, h.counts, HISTOGRAM_FILL, DATA_COLOUR, 0.4, label="voxels of the low-passed map")
    visible = h.model >= 0.3
    ax.plot(np.where(visible, h.centres, np.nan), np.where(visible, h.model, np.nan), color=MODEL_COLOUR, lw=1.3,
            label=f"fitted solvent Gaussian ({100 * c.settings.solvent_fraction:.0f} % of voxels)")
    occupied = np.nonzero(h.counts > 0)[0]
    if occupied.size:
        lo = max(h.edges[occupied[0]], -6.0)
        last = h.edges[occupied[-1] + 1]
        hi = _histogram_right_edge(h.centres, h.confidence, last)
        ax.set_xlim(lo, hi + 0.02 * (hi - lo))
        ax.set_ylim(0.5, h.counts.max() * 60)
        if hi < last:
            ax.text(0.99, 0.7, f"(tail goes on to {last:.0f} →)", transform=ax.transAxes, ha="right",
                    fontsize=6.5, color="#666666")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(decade_label))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("low-passed density − solvent mean (in solvent sd)")
    ax.set_ylabel("voxels (working grid)")
    ax.set_title("Solvent model of the low-passed map", loc="left")
    handles, labels = ax.get_legend_handles_labels()
    twin = ax.twinx()
    line, = twin.plot(h.centres, h.confidence, color=CONFIDENCE_COLOUR, lw=1.3, label="confidence (not solvent)")
    twin.set_ylim(0, 1.6)
    twin.set_yticks([0, 0.5, 1])
    twin.set_ylabel("confidence", color=CONFIDENCE_COLOUR, loc="bottom")
    twin.tick_params(axis="y", colors=CONFIDENCE_COLOUR, labelsize=7, width=0.6)
    twin.spines["right"].set_visible(True)
    twin.spines["right"].set_color(CONFIDENCE_COLOUR)
    twin.spines["right"].set_bounds(0, 1)
    twin.spines["top"].set_visible(False)
    if h.molecule_edge is not None:
        twin.plot([h.molecule_edge] * 2, [0, 1], color=CONFIDENCE_COLOUR, lw=0.7, ls=":")
        twin.text(h.molecule_edge, 1.03, " molecule →", color=CONFIDENCE_COLOUR, fontsize=6.5, va="bottom")
    ax.legend(handles=[*handles, line], labels=[*labels, str(line.get_label())], loc="upper left", fontsize=6.5)


def _scale_panel(ax: Axes, c: ClassResult) -> None:
    """Histogram of the scale inside the molecule, bars in the scale colours."""
    h, s = c.view.scale, c.statistics
    if s.molecule_voxels == 0:
        empty_panel(ax, f"no molecule voxels ({MOLECULE})")
        return
    centres = 0.5 * (h.edges[1:] + h.edges[:-1])
    zeros = np.zeros_like(h.percent)
    bars = np.stack([np.stack([h.edges[:-1], zeros], 1), np.stack([h.edges[:-1], h.percent], 1),
                     np.stack([h.edges[1:], h.percent], 1), np.stack([h.edges[1:], zeros], 1)], axis=1)
    ax.add_collection(PolyCollection(list(bars), facecolors=colormaps[SCALE_CMAP](centres), edgecolors="white",
                                     linewidths=0.3))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, h.percent.max() * 1.35)
    marks = ((s.scale_p05, (0, (3, 2)), "p05"), (s.scale_median, "-", "median"), (s.scale_p95, (0, (3, 2)), "p95"))
    for value, style, _name in marks:
        ax.plot([value] * 2, [0, h.percent.max() * 1.1], color="black", lw=0.9, ls=style)
    text = "   ".join(f"{name} {fmt(value, 3)}" for value, _style, name in marks)
    text += f"   ·   below 0.5: {fmt_percent(s.partial_fraction)} %"
    ax.text(0.01, 0.98, text, transform=ax.transAxes, fontsize=7, va="top")
    ax.set_xlabel("scale (relative occupancy)")
    ax.set_ylabel("molecule voxels (%)")
    ax.set_title(f"Scale inside the molecule ({MOLECULE})", loc="left")


#: under a class's facts when its noise floor did not come from half maps (README: what it does not get right yet)
NO_HALF_MAPS_NOTE = ("No half maps: the noise in the molecule is taken from the solvent (weaker in RELION maps), "
                     "so weak density reads high.")


def _class_facts(fig: Figure, c: ClassResult, x: float, top: float) -> None:
    """The class's own settings and numbers, in two small columns."""
    s, label = c.settings, CLASS_FACT_LABELS
    reference = fmt(s.reference_value) + (" (joint)" if s.reference_is_joint else "")
    columns = (
        [(label["solvent_mean"], fmt(s.solvent_mean)), (label["solvent_sd"], fmt(s.solvent_sd)),
         (label["noise_sd"], fmt(c.view.noise_sd)), (label["noise_floor"], fmt(s.noise_floor)),
         (label["noise_floor_source"], s.noise_floor_source.label)],
        [(label["reference_value"], reference),
         (label["reference_position_angstrom"], fmt(s.reference_position_angstrom, 3)),
         (label["molecule_voxels"], fmt(c.statistics.molecule_voxels)),
         (label["contour_level"], fmt(c.view.contour_level, 3)), (label["seconds"], f"{c.seconds:.1f} s")],
    )
    fig.text(x, top, label["solvent_region"], fontsize=7, color="#666666", va="top")
    fig.text(x + 0.1, top, s.solvent_region.label, fontsize=7, va="top")
    top -= 0.022
    for column, rows in enumerate(columns):
        cx = x + column * 0.2
        fig.text(cx, top, "\n".join(k for k, _ in rows), fontsize=7, color="#666666", va="top", linespacing=1.5)
        fig.text(cx + 0.1, top, "\n".join(v for _, v in rows), fontsize=7, va="top", linespacing=1.5)


def class_page(c: ClassResult, page: int, pages: int) -> Figure:
    """One class: slices, solvent model, scale histogram and its own settings."""
    facts = []
    if not is_missing(c.distribution):
        facts.append(f"distribution {fmt_percent(c.distribution)} %")
    if c.resolution is not None:
        facts.append(f"resolution {c.resolution:.2f} Å")
    title = "   ·   ".join([f"Class {c.number}"] + facts)
    box = f"box {fmt(tuple(reversed(c.view.box_shape)))} at {c.pixel_size:.4g} Å/pixel"
    outputs = ", ".join(Path(p).name for p in (c.outputs.scale, c.outputs.confidence, c.outputs.equalised))
    fig = new_page(title, f"{c.input_path}   ·   {box}   →   {outputs}", colour=class_colour(c.number))
    if c.settings.warnings:
        fig.text(0.96, 0.944, "\n".join("⚠ " + w for w in c.settings.warnings), fontsize=7.5, color=WARNING_COLOUR,
                 ha="right", va="bottom", linespacing=1.3)
    _slice_grid(fig, c)
    _solvent_panel(fig.add_axes((0.635, 0.58, 0.3, 0.27)), c)
    _scale_panel(fig.add_axes((0.635, 0.27, 0.3, 0.22)), c)
    _class_facts(fig, c, 0.6, 0.155)
    if c.settings.noise_floor_source is not NoiseFloorSource.NOISE_MAP:
        fig.text(0.06, 0.062, NO_HALF_MAPS_NOTE, fontsize=6.8, color="#9a5b00", va="top")
    reference = ("the joint reference of all classes" if c.settings.reference_is_joint
                 else "this class's own reference")
    footer(fig, f"Scale = local density / full-occupancy reference ({reference}); "
                "confidence = probability that a voxel is not solvent, from the solvent model.", f"{page} / {pages}")
    return fig


# ---------------------------------------------------------------------------------------------
# the joint comparison page


def _box_stats(c: ClassResult, percentiles: np.ndarray) -> dict:
    """One box of the box plot: whiskers 5–95 %, box 25–75 %, median, mean."""
    label = f"{c.number}\n{fmt_percent(c.distribution)} %" if not is_missing(c.distribution) else str(c.number)
    return {"whislo": percentiles[0], "q1": percentiles[1], "med": percentiles[2], "q3": percentiles[3],
            "whishi": percentiles[4], "mean": c.statistics.scale_mean, "fliers": [], "label": label}


def joint_page(run: RunDescription, classes: Sequence[ClassResult], page: int, pages: int) -> Figure:
    """All classes on the common scale: overlaid scale histograms and box plots."""
    fig = new_page("Classes on the common scale (--joint)",
                   f"every class divided by one reference = {fmt(run.joint_reference)}, so a lower scale means less "
                   "density than in the best-ordered part of any class")
    hist_ax = fig.add_axes((0.07, 0.14, 0.40, 0.7))
    box_ax = fig.add_axes((0.56, 0.14, 0.40, 0.7))
    stats, colours = [], []
    for c in classes:
        h = c.view.scale
        if h.percentiles is None:
            continue
        colour = class_colour(c.number)
        label = f"class {c.number}" + ("" if is_missing(c.distribution) else f" ({fmt_percent(c.distribution)} %)")
        step_fill(hist_ax, h.edges, h.percent, colour, colour, 1.6, fill_alpha=0.12, label=label)
        stats.append(_box_stats(c, h.percentiles))
        colours.append(colour)
    if not stats:
        empty_panel(hist_ax, "no class has molecule voxels")
        empty_panel(box_ax, "")
    else:
        _joint_axes(hist_ax, box_ax, stats, colours)
    footer(fig, f"Inside each class's molecule ({MOLECULE}).  Joint normalisation: one full-occupancy "
                "reference for all classes, so their scales compare directly.", f"{page} / {pages}")
    return fig


def _joint_axes(hist_ax: Axes, box_ax: Axes, stats: list[dict], colours: list[str]) -> None:
    hist_ax.set_xlim(0, 1)
    hist_ax.set_ylim(bottom=0)
    hist_ax.set_xlabel("scale (relative occupancy)")
    hist_ax.set_ylabel("molecule voxels (%)")
    hist_ax.set_title("Scale inside the molecule, per class", loc="left")
    hist_ax.legend(loc="best")
    parts = box_ax.bxp(stats, showmeans=True, patch_artist=True, widths=0.55,
                       meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black",
                                  "markersize": 4},
                       medianprops={"color": "black", "lw": 1.2})
    for box, colour in zip(parts["boxes"], colours):
        box.set_facecolor(colour)
        box.set_alpha(0.75)
    box_ax.set_ylim(0, 1.02)
    box_ax.set_ylabel("scale (relative occupancy)")
    box_ax.set_xlabel("class (distribution)")
    box_ax.set_title("Box: 25–75 %, line: median, ◇: mean, whiskers: 5–95 %", loc="left")
    box_ax.axhline(0.5, color="#999999", lw=0.6, ls=":")

"""``logfile.pdf``: the run summary page, one page per class and, with ``--joint``, a comparison page.

Headless by construction: pages are plain :class:`matplotlib.figure.Figure` objects written by the
PDF backend's :class:`~matplotlib.backends.backend_pdf.PdfPages`, so no GUI backend is touched and
the global backend (``matplotlib.use``) and rcParams of the calling program are left as they were
(the report's style is applied in an ``rc_context``).

For speed (the report's cost is fixed, about 0.25 s of CPU per class page, so it only matters next to
small boxes): the nine slices of a class share one axes (laid out in Å) that also holds the colour
bar, images carry no ticks (a scale bar in Å instead) and are embedded at their own resolution
(``interpolation="none"``), histograms are single polygons or collections, log axes are labelled
without mathtext, titles sit at a fixed height and nothing asks for an automatic layout.
"""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, NullLocator

from . import CONTOUR_SIGMAS, SCALE_PERCENTILES, ClassSummary
from .style import (CONFIDENCE_COLOUR, CONTOUR_COLOUR, DATA_COLOUR, HEADER_COLOUR, MODEL_COLOUR, SCALE_CMAP,
                    NOT_SETTINGS, SETTING_LABELS, WARNING_COLOUR, class_colour, fmt, fmt_percent, is_missing, same_value)

PAGE_SIZE = (11.69, 8.27)  # A4 landscape, inches

STYLE = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.titleweight": "bold",
    "axes.titlecolor": HEADER_COLOUR,
    "axes.titley": 1.03,  # a fixed title position: the automatic one costs a layout pass per axes
    "axes.titlepad": 0.0,
    "axes.labelsize": 8,
    "axes.edgecolor": "#555555",
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "image.interpolation": "none",
    "pdf.compression": 6,
}

GREY_PERCENTILES = (0.5, 99.8)  # display range of the density slices
SOLVENT_GREY = (0.93, 0.93, 0.93)  # where the scale is not shown (solvent)
HISTOGRAM_FILL = "#c9ced6"
PLANES = (("xy", "x", "y", "z"), ("xz", "x", "z", "y"), ("yz", "y", "z", "x"))  # plane, horizontal, vertical, cut


# ---------------------------------------------------------------------------------------------
# small drawing helpers


def _page(title: str, subtitle: str = "", colour: str | None = None) -> Figure:
    """An empty A4 landscape page with a title, a subtitle and a rule under them."""
    fig = Figure(figsize=PAGE_SIZE)
    x = 0.04
    if colour is not None:
        fig.add_artist(Rectangle((0.04, 0.936), 0.012, 0.034, transform=fig.transFigure, color=colour))
        x = 0.06
    fig.text(x, 0.944, title, fontsize=15, fontweight="bold", color=HEADER_COLOUR)
    if subtitle:
        fig.text(0.04, 0.912, subtitle, fontsize=8.5, color="#555555")
    fig.add_artist(Line2D([0.04, 0.96], [0.902, 0.902], transform=fig.transFigure, color=HEADER_COLOUR, lw=0.8))
    return fig


def _footer(fig: Figure, text: str, page_label: str) -> None:
    """A small explanation at the foot of the page (wrapped to the page width) and the page number."""
    fig.text(0.04, 0.015, "\n".join(_wrap(text, 225)), fontsize=6.5, color="#666666", va="bottom", linespacing=1.4)
    fig.text(0.96, 0.015, page_label, fontsize=6.5, color="#666666", ha="right", va="bottom")


def _empty_panel(ax, message: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#888888", transform=ax.transAxes)


def _edges_from_centres(centres: np.ndarray) -> np.ndarray:
    """Bin edges of a uniformly binned histogram given its centres."""
    centres = np.asarray(centres, dtype=np.float64)
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    step = (centres[-1] - centres[0]) / (centres.size - 1)
    return np.concatenate([centres - step / 2, [centres[-1] + step / 2]])


def _step_fill(ax, edges, heights, fill, line, width, fill_alpha=1.0, label=None) -> None:
    """A filled step histogram as one polygon and one line (Axes.stairs is several times slower)."""
    x = np.repeat(np.asarray(edges, dtype=np.float64), 2)
    y = np.concatenate([[0.0], np.repeat(np.asarray(heights, dtype=np.float64), 2), [0.0]])
    ax.add_collection(PolyCollection([np.column_stack([x, y])], facecolors=fill, edgecolors="none", alpha=fill_alpha,
                                     label=label if fill_alpha == 1.0 else None), autolim=False)
    ax.plot(x, y, color=line, lw=width, label=None if fill_alpha == 1.0 else label)


def _nice_length(span: float) -> float:
    """A round scale-bar length of about a quarter of ``span`` Å."""
    target = span / 4
    for length in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if length >= target:
            return float(length)
    return float(round(target, -3))


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=max(10, width), break_long_words=True, break_on_hyphens=False) or [""]


# ---------------------------------------------------------------------------------------------
# page 1: the run


def _label(key) -> str:
    """A run_info key as a label: underscores to spaces, first letter capital ('relion_version' →
    'Relion version'); keys that already contain capitals are kept as they are."""
    text = str(key).replace("_", " ")
    return text[:1].upper() + text[1:] if text == text.lower() else text


def _run_sections(run_info: dict) -> list[tuple[str, list[tuple[str, str]]]]:
    """run_info as titled sections of (key, value) rows; nested dicts become their own sections."""
    plain, sections = [], []
    for key, value in (run_info or {}).items():
        if isinstance(value, dict):
            sections.append((_label(key), [(_label(k), fmt(v)) for k, v in value.items()]))
        else:
            plain.append((_label(key), fmt(value)))
    return ([("Run", plain)] if plain else []) + sections


def _settings_sections(classes: list[ClassSummary]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Derived settings shared by all classes, and the names of those that differ per class."""
    if not classes:
        return []
    keys = [k for k in SETTING_LABELS if any(k in c.settings for c in classes)]
    keys += sorted({k for c in classes for k in c.settings} - set(keys))
    keys = [k for k in keys if k not in NOT_SETTINGS]
    common, varying = [], []
    for key in keys:
        values = [c.settings.get(key) for c in classes]
        label = SETTING_LABELS.get(key) or _label(key)
        if all(same_value(values[0], v) for v in values[1:]):
            common.append((label, fmt(values[0])))
        else:
            varying.append(label)
    rows = list(common)
    rows.append(("Contour in ChimeraX", f"solvent mean + {CONTOUR_SIGMAS:g} × solvent noise sd"))
    sections = [("Derived settings" + (" (all classes)" if len(classes) > 1 else ""), rows)]
    if varying:
        sections.append(("Per class (see the class pages)", [(", ".join(varying), "")]))
    warnings = [(f"Class {c.number}: {w}", "") for c in classes for w in _class_warnings(c)]
    if warnings:
        sections.append(("⚠ Warnings", warnings))
    return sections


def _class_warnings(c: ClassSummary) -> list[str]:
    """The core's plain-language warnings about a class's map (settings["warnings"])."""
    warnings = c.settings.get("warnings") or []
    if isinstance(warnings, str):
        warnings = [warnings]
    return [str(w) for w in warnings]


def _draw_sections(fig: Figure, sections, x: float, width: float, top: float, bottom: float) -> None:
    """Key/value sections in a column, shrinking the font until they fit between top and bottom."""
    page_w, page_h = PAGE_SIZE
    for size in (8.0, 7.5, 7.0, 6.5, 6.0, 5.5):
        line = size * 1.5 / 72 / page_h
        key_width = 0.36 * width
        key_chars = int(key_width * page_w * 72 / (size * 0.56))
        value_chars = int((width - key_width) * page_w * 72 / (size * 0.56))
        layout, height = [], 0.0
        for title, rows in sections:
            layout.append(("title", title, None))
            height += line * 1.6
            for key, value in rows:
                if not value:  # a note across the whole width
                    wrapped = _wrap(key, key_chars + value_chars)
                    layout.append(("note", wrapped, None))
                    height += line * len(wrapped)
                else:
                    keys, values = _wrap(key, key_chars), _wrap(value, value_chars)
                    layout.append(("row", keys, values))
                    height += line * max(len(keys), len(values))
            layout.append(("gap", None, None))
            height += line * 0.8
        if height <= top - bottom:
            break
    y = top
    for kind, first, second in layout:
        if y < bottom:
            fig.text(x, y, "…", fontsize=size, color="#888888", va="top")
            break
        if kind == "title":
            fig.text(x, y, first, fontsize=size + 2, fontweight="bold", color=HEADER_COLOUR, va="top")
            y -= line * 1.6
        elif kind == "gap":
            y -= line * 0.8
        elif kind == "note":
            fig.text(x, y, "\n".join(first), fontsize=size, color="#333333", va="top", linespacing=1.25)
            y -= line * len(first)
        else:
            fig.text(x, y, "\n".join(first), fontsize=size, color="#666666", va="top", linespacing=1.25)
            fig.text(x + key_width, y, "\n".join(second), fontsize=size, color="black", va="top", linespacing=1.25)
            y -= line * max(len(first), len(second))


#: the table of classes: header, relative width, alignment
TABLE_COLUMNS = (
    ("Class", 0.06, "left"), ("Input map", 0.25, "left"), ("Distribution\n(%)", 0.08, "right"),
    ("Resolution\n(Å)", 0.08, "right"), ("Scale\nmedian", 0.07, "right"), ("Scale\np05", 0.07, "right"),
    ("Scale\np95", 0.07, "right"), ("Partial\n< 0.5 (%)", 0.08, "right"), ("Molecule\n(% of box)", 0.085, "right"),
    ("Time\n(s)", 0.065, "right"),
)


def _fixed(value, decimals: int = 3) -> str:
    return "–" if is_missing(value) else f"{float(value):.{decimals}f}"


def _class_row(c: ClassSummary) -> list[str]:
    s = c.statistics or {}
    molecule = "–"
    if c.box_shape and not is_missing(s.get("molecule_voxels")):
        molecule = fmt_percent(s["molecule_voxels"] / float(np.prod(c.box_shape)))
    name = Path(c.input_path).name if c.input_path else "–"
    if len(name) > 42:
        name = "…" + name[-41:]
    return [str(c.number), name, fmt_percent(c.distribution),
            "–" if is_missing(c.resolution) else f"{float(c.resolution):.2f}",
            _fixed(s.get("scale_median")), _fixed(s.get("scale_p05")), _fixed(s.get("scale_p95")),
            fmt_percent(s.get("partial_fraction")), molecule, f"{float(c.seconds):.1f}"]


def _draw_table(fig: Figure, classes: list[ClassSummary], top: float, max_height: float) -> float:
    """The table of classes from ``top`` down; rows shrink, then are cut, to fit.  Returns its bottom."""
    x0, total = 0.04, 0.92
    scale = total / sum(w for _, w, _ in TABLE_COLUMNS)
    rows = [_class_row(c) for c in classes]
    header_h = 0.05
    row_h = min(0.03, (max_height - header_h) / max(1, len(rows)))
    shown = len(rows)
    if row_h < 0.018:  # too many classes for one page: keep the first ones, say how many are left out
        row_h = 0.018
        shown = max(1, int((max_height - header_h) / row_h) - 1)
    size = 8.5 if row_h >= 0.026 else 7.0 if row_h >= 0.021 else 6.0
    y = top
    fig.add_artist(Rectangle((x0, y - header_h), total, header_h, transform=fig.transFigure, color=HEADER_COLOUR,
                             lw=0))
    x = x0
    for name, width, align in TABLE_COLUMNS:
        w = width * scale
        fig.text(x + (w - 0.006 if align == "right" else 0.006), y - header_h / 2, name, color="white",
                 fontweight="bold", fontsize=7.5, ha=align, va="center", linespacing=1.2)
        x += w
    y -= header_h
    for index, (c, row) in enumerate(zip(classes[:shown], rows[:shown])):
        if index % 2:
            fig.add_artist(Rectangle((x0, y - row_h), total, row_h, transform=fig.transFigure, color="#eef1f5", lw=0))
        x = x0
        for column, ((_name, width, align), text) in enumerate(zip(TABLE_COLUMNS, row)):
            w = width * scale
            if column == 0:
                fig.add_artist(Rectangle((x + 0.006, y - row_h / 2 - 0.0065), 0.01, 0.013,
                                         transform=fig.transFigure, color=class_colour(c.number), lw=0))
                fig.text(x + 0.022, y - row_h / 2, text, fontsize=size, va="center", fontweight="bold")
            else:
                fig.text(x + (w - 0.006 if align == "right" else 0.006), y - row_h / 2, text, fontsize=size,
                         ha=align, va="center")
            x += w
        y -= row_h
    fig.add_artist(Line2D([x0, x0 + total], [y, y], transform=fig.transFigure, color=HEADER_COLOUR, lw=0.8))
    if shown < len(rows):
        y -= 0.005
        fig.text(x0, y, f"… and {len(rows) - shown} more classes: see their pages.", fontsize=7,
                 color="#666666", va="top")
        y -= 0.02
    return y


def summary_page(run_info: dict, classes: list[ClassSummary], joint: bool, job_dir: Path, pages: int) -> Figure:
    """Page 1: one row per class, then what ran and with which settings."""
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    reference = "one joint reference for all classes (--joint)" if joint else "each class against its own reference"
    count = f"{len(classes)} class{'es' if len(classes) != 1 else ''}"
    fig = _page("occupy_relion · local scale (relative occupancy)",
                f"{Path(job_dir).as_posix().rstrip('/')}/   ·   {when}   ·   {count}   ·   scale: {reference}")
    fig.text(0.04, 0.885, "Classes", fontsize=10, fontweight="bold", color=HEADER_COLOUR, va="top")
    if classes:
        table_bottom = _draw_table(fig, classes, 0.86, 0.42)
    else:
        fig.text(0.04, 0.86, "No class was processed.", fontsize=9, color="#888888", va="top")
        table_bottom = 0.83
    text_top = table_bottom - 0.04
    _draw_sections(fig, _run_sections(run_info), 0.04, 0.42, text_top, 0.05)
    _draw_sections(fig, _settings_sections(classes), 0.54, 0.42, text_top, 0.05)
    _footer(fig, "Scale: local density relative to the full-occupancy reference, inside the molecule "
                 "(confidence ≥ 0.5, scale ≥ 0.05).  p05 / p95: 5th / 95th percentiles.  Partial: share of molecule voxels "
                 "with scale < 0.5.  Molecule: molecule voxels as a share of the box.", f"1 / {pages}")
    return fig


# ---------------------------------------------------------------------------------------------
# one page per class


def _grey_range(slices: list[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([np.asarray(s, np.float32).ravel() for s in slices])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, GREY_PERCENTILES)
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
        if not hi > lo:
            hi = lo + 1.0
    return float(lo), float(hi)


def _scale_rgb(scale: np.ndarray, confidence: np.ndarray | None) -> np.ndarray:
    """Scale in the scale colours, light grey where the voxel is solvent (confidence < 0.5)."""
    rgb = colormaps[SCALE_CMAP](np.clip(np.nan_to_num(scale), 0, 1))[..., :3]
    if confidence is not None and np.shape(confidence) == np.shape(scale):
        solvent = (np.asarray(confidence) < 0.5)[..., None]
        rgb = np.where(solvent, np.array(SOLVENT_GREY), rgb)
    return rgb


def _slice_grid(fig: Figure, c: ClassSummary) -> None:
    """Input, scale and equalised central slices (columns) in the xy, xz and yz planes (rows).

    All nine images share one axes (laid out in Å, one square cell per image): far cheaper than
    nine axes, and every slice is on the same Å scale.
    """
    columns = (("Input map", c.input_slices), ("Scale", c.scale_slices), ("Equalised map", c.equalised_slices))
    confidence = c.confidence_slices if len(c.confidence_slices or []) == 3 else [None] * 3
    shapes = [np.shape(s) for slices in columns for s in (slices[1] or []) if np.ndim(s) == 2]
    cell = max([max(shape) for shape in shapes] + [1]) * c.pixel_size
    gap = 0.05 * cell
    span = 3 * cell + 2 * gap
    height = 0.64
    ax = fig.add_axes([0.075, 0.205, height * PAGE_SIZE[1] / PAGE_SIZE[0], height])
    ax.set_xlim(0, span)
    ax.set_ylim(0, span)
    ax.set_axis_off()
    shape = c.box_shape
    for col, (title, slices) in enumerate(columns):
        x0 = col * (cell + gap)
        ax.text(x0 + cell / 2, span + 0.03 * cell, title, ha="center", va="bottom", fontsize=9.5,
                fontweight="bold", color=HEADER_COLOUR)
        if len(slices or []) != 3:
            ax.text(x0 + cell / 2, span / 2, "not available", ha="center", va="center", color="#888888")
            continue
        vmin, vmax = _grey_range(slices) if col != 1 else (0.0, 1.0)
        for row, (plane, _horizontal, _vertical, cut) in enumerate(PLANES):
            image = np.asarray(slices[row], dtype=np.float32)
            w, h = image.shape[1] * c.pixel_size, image.shape[0] * c.pixel_size
            left = x0 + (cell - w) / 2
            bottom = span - row * (cell + gap) - cell + (cell - h) / 2
            extent = (left, left + w, bottom, bottom + h)
            if col == 1:
                ax.imshow(_scale_rgb(image, confidence[row]), origin="lower", extent=extent, interpolation="none")
            else:
                ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=extent,
                          interpolation="none")
            if col == 0 and not is_missing(c.contour_level) and image.min() < c.contour_level < image.max():
                ax.contour(image, levels=[float(c.contour_level)], colors=CONTOUR_COLOUR, linewidths=0.6,
                           origin="lower", extent=extent)
            if col == 0:  # Å axes replaced by a scale bar and the plane's name
                length = _nice_length(w)
                bx, by = left + 0.05 * w, bottom + 0.05 * h
                ax.plot([bx, bx + length], [by, by], color="white", lw=2, solid_capstyle="butt")
                ax.text(bx + length / 2, by + 0.03 * h, f"{length:g} Å", color="white", ha="center",
                        va="bottom", fontsize=6.5)
                index = (shape[("z", "y", "x").index(cut)] // 2) if shape else None
                label = f"{plane}  ({cut} = {index})" if index is not None else plane
                ax.text(-0.06 * cell, bottom + h / 2, label, rotation=90, ha="center", va="center", fontsize=8,
                        color="#444444")
    # the colour bar under the scale column, drawn in the same axes (a colorbar axes costs as much as a plot)
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
    notes = [f"Central slices through the box centre; grey: density ({GREY_PERCENTILES[0]:g}–"
             f"{GREY_PERCENTILES[1]:g} percentile of the slices).",
             "Scale: shown inside the molecule (confidence ≥ 0.5), light grey in the solvent."]
    if not is_missing(c.contour_level):
        notes.append(f"Orange line: the ChimeraX contour, solvent mean + {CONTOUR_SIGMAS:g} × solvent noise sd "
                     f"= {fmt(c.contour_level, 3)}.")
    fig.text(0.06, 0.115, "\n".join(notes), fontsize=6.8, color="#555555", va="top", linespacing=1.45)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _decade_label(value: float, _position=None) -> str:
    """'10³' for a power of ten, '' otherwise: log-axis labels without mathtext (which is slow)."""
    if not value > 0:
        return ""
    exponent = np.log10(value)
    if abs(exponent - round(exponent)) > 1e-6:
        return ""
    return "10" + str(int(round(exponent))).translate(_SUPERSCRIPT)


def _histogram_right_edge(x: np.ndarray, curve, last: float) -> float:
    """Where the solvent histogram's x axis ends: well past the solvent and the rise of the confidence,
    but not all the way along a long molecular tail (which would squeeze the fit into a corner)."""
    right = 10.0
    if curve is not None and len(curve) == x.size:
        full = np.nonzero(np.asarray(curve) >= 0.99)[0]
        if full.size:
            right = max(right, 2.0 * float(x[full[0]]) + 2.0)
    return float(min(last, right))


def _solvent_panel(ax, c: ClassSummary) -> None:
    """Histogram of the low-passed map with the fitted solvent Gaussian and the confidence curve."""
    if c.histogram_centres is None or c.histogram_counts is None or len(c.histogram_centres) == 0:
        _empty_panel(ax, "no histogram")
        return
    mean, sd = c.settings.get("solvent_mean"), c.settings.get("solvent_sd")
    centres = np.asarray(c.histogram_centres, dtype=np.float64)
    if is_missing(mean) or is_missing(sd) or not float(sd) > 0:
        mean, sd = 0.0, 1.0
        xlabel = "low-passed density (map units)"
    else:
        mean, sd = float(mean), float(sd)
        xlabel = "low-passed density − solvent mean (in solvent sd)"
    x_centres = (centres - mean) / sd
    edges = _edges_from_centres(x_centres)
    counts = np.asarray(c.histogram_counts, dtype=np.float64)
    _step_fill(ax, edges, counts, HISTOGRAM_FILL, DATA_COLOUR, 0.4, label="voxels of the low-passed map")
    if c.solvent_counts is not None and len(c.solvent_counts) == len(counts):
        model = np.asarray(c.solvent_counts, dtype=np.float64)
        visible = model >= 0.3
        fraction = c.settings.get("solvent_fraction")
        label = "fitted solvent Gaussian" + ("" if is_missing(fraction) else f" ({100 * float(fraction):.0f} % of voxels)")
        ax.plot(np.where(visible, x_centres, np.nan), np.where(visible, model, np.nan), color=MODEL_COLOUR, lw=1.3,
                label=label)
    occupied = np.nonzero(counts > 0)[0]
    if occupied.size:
        lo = max(edges[occupied[0]], -6.0)
        last = edges[occupied[-1] + 1]
        hi = _histogram_right_edge(x_centres, c.confidence_curve, last)
        ax.set_xlim(lo, hi + 0.02 * (hi - lo))
        ax.set_ylim(0.5, counts.max() * 60)
        if hi < last:
            ax.text(0.99, 0.7, f"(tail goes on to {last:.0f} →)", transform=ax.transAxes, ha="right",
                    fontsize=6.5, color="#666666")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_decade_label))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(xlabel)
    ax.set_ylabel("voxels (working grid)")
    ax.set_title("Solvent model of the low-passed map", loc="left")
    handles, labels = ax.get_legend_handles_labels()
    if c.confidence_curve is not None and len(c.confidence_curve) == len(counts):
        twin = ax.twinx()
        curve = np.asarray(c.confidence_curve, dtype=np.float64)
        line, = twin.plot(x_centres, curve, color=CONFIDENCE_COLOUR, lw=1.3, label="confidence (not solvent)")
        twin.set_ylim(0, 1.6)
        twin.set_yticks([0, 0.5, 1])
        twin.set_ylabel("confidence", color=CONFIDENCE_COLOUR, loc="bottom")
        twin.tick_params(axis="y", colors=CONFIDENCE_COLOUR, labelsize=7, width=0.6)
        twin.spines["right"].set_visible(True)
        twin.spines["right"].set_color(CONFIDENCE_COLOUR)
        twin.spines["right"].set_bounds(0, 1)
        twin.spines["top"].set_visible(False)
        above = np.nonzero(curve >= 0.5)[0]
        if above.size:
            edge = x_centres[above[0]]
            twin.plot([edge, edge], [0, 1], color=CONFIDENCE_COLOUR, lw=0.7, ls=":")
            twin.text(edge, 1.03, " molecule →", color=CONFIDENCE_COLOUR, fontsize=6.5, va="bottom")
        handles.append(line)
        labels.append(line.get_label())
    ax.legend(handles, labels, loc="upper left", fontsize=6.5)


def _scale_panel(ax, c: ClassSummary) -> None:
    """Histogram of the scale inside the molecule, bars in the scale colours."""
    counts = None if c.scale_histogram is None else np.asarray(c.scale_histogram, dtype=np.float64)
    if counts is None or counts.sum() <= 0:
        _empty_panel(ax, "no molecule voxels (confidence ≥ 0.5, scale ≥ 0.05)")
        return
    percent = 100 * counts / counts.sum()
    edges = np.linspace(0.0, 1.0, counts.size + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    zeros = np.zeros_like(percent)
    bars = np.stack([np.stack([edges[:-1], zeros], 1), np.stack([edges[:-1], percent], 1),
                     np.stack([edges[1:], percent], 1), np.stack([edges[1:], zeros], 1)], axis=1)
    ax.add_collection(PolyCollection(bars, facecolors=colormaps[SCALE_CMAP](centres), edgecolors="white",
                                     linewidths=0.3))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, percent.max() * 1.35)
    s = c.statistics or {}
    marks = (("scale_p05", (0, (3, 2)), "p05"), ("scale_median", "-", "median"), ("scale_p95", (0, (3, 2)), "p95"))
    for key, style, _name in marks:
        if not is_missing(s.get(key)):
            ax.plot([float(s[key])] * 2, [0, percent.max() * 1.1], color="black", lw=0.9, ls=style)
    text = "   ".join(f"{name} {fmt(s.get(key), 3)}" for key, _style, name in marks)
    if not is_missing(s.get("partial_fraction")):
        text += f"   ·   below 0.5: {fmt_percent(s['partial_fraction'])} %"
    ax.text(0.01, 0.98, text, transform=ax.transAxes, fontsize=7, va="top")
    ax.set_xlabel("scale (relative occupancy)")
    ax.set_ylabel("molecule voxels (%)")
    ax.set_title("Scale inside the molecule (confidence ≥ 0.5, scale ≥ 0.05)", loc="left")


def _class_facts(fig: Figure, c: ClassSummary, x: float, top: float) -> None:
    """The class's own settings and numbers, in two small columns."""
    s, st = c.settings, c.statistics or {}
    reference = fmt(s.get("reference_value"))
    if s.get("reference_is_joint"):
        reference += " (joint)"
    columns = (
        [("Solvent mean", fmt(s.get("solvent_mean"))),
         ("Solvent sd (low-pass)", fmt(s.get("solvent_sd"))),
         ("Noise sd (full map)", fmt(c.noise_sd)),
         ("Noise floor", fmt(s.get("noise_floor"))),
         ("  measured from", fmt(s.get("noise_floor_source")))],
        [("Reference", reference),
         ("Reference at (Å)", fmt(s.get("reference_position_angstrom"), 3)),
         ("Molecule voxels", fmt(st.get("molecule_voxels"))),
         ("ChimeraX level", fmt(c.contour_level, 3)),
         ("Time", f"{float(c.seconds):.1f} s")],
    )
    fig.text(x, top, "Solvent fitted in", fontsize=7, color="#666666", va="top")
    fig.text(x + 0.1, top, fmt(s.get("solvent_region")), fontsize=7, va="top")
    top -= 0.022
    for column, rows in enumerate(columns):
        cx = x + column * 0.2
        fig.text(cx, top, "\n".join(k for k, _ in rows), fontsize=7, color="#666666", va="top", linespacing=1.5)
        fig.text(cx + 0.1, top, "\n".join(v for _, v in rows), fontsize=7, va="top", linespacing=1.5)


def class_page(c: ClassSummary, joint: bool, page: int, pages: int) -> Figure:
    """One class: slices, solvent model, scale histogram and its own settings."""
    facts = []
    if not is_missing(c.distribution):
        facts.append(f"distribution {fmt_percent(c.distribution)} %")
    if not is_missing(c.resolution):
        facts.append(f"resolution {float(c.resolution):.2f} Å")
    title = "   ·   ".join([f"Class {c.number}"] + facts)
    box = f"box {fmt(tuple(reversed(c.box_shape)))} at {c.pixel_size:.4g} Å/pixel" if c.box_shape \
        else f"{c.pixel_size:.4g} Å/pixel"
    outputs = ", ".join(Path(p).name for p in (c.scale_path, c.confidence_path, c.equalised_path) if p)
    fig = _page(title, f"{c.input_path}   ·   {box}   →   {outputs}", colour=class_colour(c.number))
    warnings = _class_warnings(c)
    if warnings:
        fig.text(0.96, 0.944, "\n".join("⚠ " + w for w in warnings), fontsize=7.5, color=WARNING_COLOUR, ha="right",
                 va="bottom", linespacing=1.3)
    _slice_grid(fig, c)
    _solvent_panel(fig.add_axes([0.635, 0.58, 0.3, 0.27]), c)
    _scale_panel(fig.add_axes([0.635, 0.27, 0.3, 0.22]), c)
    _class_facts(fig, c, 0.6, 0.155)
    reference = "the joint reference of all classes" if joint or c.settings.get("reference_is_joint") \
        else "this class's own reference"
    _footer(fig, f"Scale = local density / full-occupancy reference ({reference}); "
                 "confidence = probability that a voxel is not solvent, from the solvent model.",
            f"{page} / {pages}")
    return fig


# ---------------------------------------------------------------------------------------------
# the joint comparison page


def _percentiles_from_histogram(counts: np.ndarray) -> np.ndarray:
    """SCALE_PERCENTILES read off a 50-bin histogram on [0, 1] (for summaries without them)."""
    cumulative = np.concatenate([[0.0], np.cumsum(counts)]) / counts.sum()
    edges = np.linspace(0.0, 1.0, counts.size + 1)
    return np.interp(np.asarray(SCALE_PERCENTILES) / 100.0, cumulative, edges)


def joint_page(classes: list[ClassSummary], page: int, pages: int) -> Figure:
    """All classes on the common scale: overlaid scale histograms and box plots."""
    reference = next((c.settings.get("reference_value") for c in classes if "reference_value" in c.settings), None)
    fig = _page("Classes on the common scale (--joint)",
                f"every class divided by one reference = {fmt(reference)}, so a lower scale means less density "
                f"than in the best-ordered part of any class")
    hist_ax = fig.add_axes([0.07, 0.14, 0.40, 0.7])
    box_ax = fig.add_axes([0.56, 0.14, 0.40, 0.7])
    stats, colours = [], []
    for c in classes:
        counts = None if c.scale_histogram is None else np.asarray(c.scale_histogram, dtype=np.float64)
        if counts is None or counts.sum() <= 0:
            continue
        edges = np.linspace(0.0, 1.0, counts.size + 1)
        colour = class_colour(c.number)
        label = f"class {c.number}" + ("" if is_missing(c.distribution) else f" ({fmt_percent(c.distribution)} %)")
        _step_fill(hist_ax, edges, 100 * counts / counts.sum(), colour, colour, 1.6, fill_alpha=0.12, label=label)
        p = c.scale_percentiles if c.scale_percentiles is not None else _percentiles_from_histogram(counts)
        p = np.asarray(p, dtype=np.float64)
        mean = (c.statistics or {}).get("scale_mean")
        stats.append({"whislo": p[0], "q1": p[1], "med": p[2], "q3": p[3], "whishi": p[4],
                      "mean": float(mean) if not is_missing(mean) else p[2], "fliers": [],
                      "label": f"{c.number}\n{fmt_percent(c.distribution)} %" if not is_missing(c.distribution)
                      else str(c.number)})
        colours.append(colour)
    if not stats:
        _empty_panel(hist_ax, "no class has molecule voxels")
        _empty_panel(box_ax, "")
    else:
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
    _footer(fig, "Inside each class's molecule (confidence ≥ 0.5, scale ≥ 0.05).  Joint normalisation: one full-occupancy "
                 "reference for all classes, so their scales compare directly.", f"{page} / {pages}")
    return fig


# ---------------------------------------------------------------------------------------------


def render_pdf(path, run_info: dict, classes: list[ClassSummary], *, joint: bool = False, job_dir=".") -> None:
    """Write the whole PDF logfile to ``path`` (1 page + 1 per class, + 1 comparison page with joint)."""
    pages = 1 + len(classes) + (1 if joint else 0)
    metadata = {"Title": f"occupy_relion report: {Path(job_dir).as_posix()}", "Creator": "occupy_relion",
                "Subject": "local scale (relative occupancy) of RELION classes"}
    with matplotlib.rc_context(STYLE), PdfPages(path, metadata=metadata) as pdf:
        pdf.savefig(summary_page(run_info, classes, joint, Path(job_dir), pages))
        for index, c in enumerate(classes):
            pdf.savefig(class_page(c, joint, index + 2, pages))
        if joint:
            pdf.savefig(joint_page(classes, pages, pages))

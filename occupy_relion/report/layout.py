"""The layout engine of the PDF: A4 pages, titles, footers, key/value sections, tables, histograms.

Nothing here knows about classes or scales; the pages (``pages.py``) are made of these pieces.
For speed, text sits at fixed positions and nothing asks matplotlib for an automatic layout.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from .style import HEADER_COLOUR

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

PAGE_SIZE = (11.69, 8.27)  # A4 landscape, inches

STYLE: dict[RcKeyType, Any] = {
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

#: a titled block of (key, value) rows; a row with an empty value is a note across the whole width
Section = tuple[str, Sequence[tuple[str, str]]]


def new_page(title: str, subtitle: str = "", colour: str | None = None) -> Figure:
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


def footer(fig: Figure, text: str, page_label: str) -> None:
    """A small explanation at the foot of the page (wrapped to the page width) and the page number."""
    fig.text(0.04, 0.015, "\n".join(wrap(text, 225)), fontsize=6.5, color="#666666", va="bottom", linespacing=1.4)
    fig.text(0.96, 0.015, page_label, fontsize=6.5, color="#666666", ha="right", va="bottom")


def empty_panel(ax: Axes, message: str) -> None:
    """A panel with nothing to plot: its reason, centred."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", color="#888888", transform=ax.transAxes)


def step_fill(ax: Axes, edges: np.ndarray, heights: np.ndarray, fill: str, line: str, width: float,
              fill_alpha: float = 1.0, label: str | None = None) -> None:
    """A filled step histogram as one polygon and one line (Axes.stairs is several times slower)."""
    x = np.repeat(np.asarray(edges, dtype=np.float64), 2)
    y = np.concatenate([[0.0], np.repeat(np.asarray(heights, dtype=np.float64), 2), [0.0]])
    ax.add_collection(PolyCollection([np.column_stack([x, y])], facecolors=fill, edgecolors="none", alpha=fill_alpha,
                                     label=label if fill_alpha == 1.0 else None), autolim=False)
    ax.plot(x, y, color=line, lw=width, label=None if fill_alpha == 1.0 else label)


def nice_length(span: float) -> float:
    """A round scale-bar length of about a quarter of ``span`` Å."""
    target = span / 4
    for length in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if length >= target:
            return float(length)
    return float(round(target, -3))


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters (at least one line)."""
    return textwrap.wrap(text, width=max(10, width), break_long_words=True, break_on_hyphens=False) or [""]


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def decade_label(value: float, _position: object = None) -> str:
    """'10³' for a power of ten, '' otherwise: log-axis labels without mathtext (which is slow)."""
    if not value > 0:
        return ""
    exponent = np.log10(value)
    if abs(exponent - round(exponent)) > 1e-6:
        return ""
    return "10" + str(int(round(exponent))).translate(_SUPERSCRIPT)


@dataclass(frozen=True)
class _SectionLayout:
    """Sections laid out at one font size: (kind, first, second) lines and the total height."""

    size: float
    line: float
    key_width: float
    lines: list[tuple[str, object, object]]
    height: float


def _layout_sections(sections: Sequence[Section], width: float, size: float) -> _SectionLayout:
    page_w, page_h = PAGE_SIZE
    line = size * 1.5 / 72 / page_h
    key_width = 0.36 * width
    key_chars = int(key_width * page_w * 72 / (size * 0.56))
    value_chars = int((width - key_width) * page_w * 72 / (size * 0.56))
    lines: list[tuple[str, object, object]] = []
    height = 0.0
    for title, rows in sections:
        lines.append(("title", title, None))
        height += line * 1.6
        for key, value in rows:
            if not value:  # a note across the whole width
                wrapped = wrap(key, key_chars + value_chars)
                lines.append(("note", wrapped, None))
                height += line * len(wrapped)
            else:
                keys, values = wrap(key, key_chars), wrap(value, value_chars)
                lines.append(("row", keys, values))
                height += line * max(len(keys), len(values))
        lines.append(("gap", None, None))
        height += line * 0.8
    return _SectionLayout(size, line, key_width, lines, height)


def draw_sections(fig: Figure, sections: Sequence[Section], x: float, width: float, top: float,
                  bottom: float) -> None:
    """Key/value sections in a column, shrinking the font until they fit between top and bottom."""
    for size in (8.0, 7.5, 7.0, 6.5, 6.0, 5.5):
        layout = _layout_sections(sections, width, size)
        if layout.height <= top - bottom:
            break
    size, line, y = layout.size, layout.line, top
    for kind, first, second in layout.lines:
        if y < bottom:
            fig.text(x, y, "…", fontsize=size, color="#888888", va="top")
            break
        if kind == "title":
            fig.text(x, y, str(first), fontsize=size + 2, fontweight="bold", color=HEADER_COLOUR, va="top")
            y -= line * 1.6
        elif kind == "gap":
            y -= line * 0.8
        elif kind == "note":
            assert isinstance(first, list)
            fig.text(x, y, "\n".join(first), fontsize=size, color="#333333", va="top", linespacing=1.25)
            y -= line * len(first)
        else:
            assert isinstance(first, list) and isinstance(second, list)
            fig.text(x, y, "\n".join(first), fontsize=size, color="#666666", va="top", linespacing=1.25)
            fig.text(x + layout.key_width, y, "\n".join(second), fontsize=size, color="black", va="top",
                     linespacing=1.25)
            y -= line * max(len(first), len(second))


@dataclass(frozen=True)
class Column:
    """A table column: header, relative width, alignment."""

    header: str
    width: float
    align: str  # "left" or "right"


def draw_table(fig: Figure, columns: Sequence[Column], rows: Sequence[Sequence[str]], swatches: Sequence[str],
               top: float, max_height: float, more: str) -> float:
    """A table from ``top`` down, a colour swatch before each first cell; rows shrink, then are cut, to fit.

    ``more`` is said under a cut table (with ``{count}`` for the rows left out).  Returns its bottom.
    """
    x0, total = 0.04, 0.92
    scale = total / sum(c.width for c in columns)
    header_h = 0.05
    row_h = min(0.03, (max_height - header_h) / max(1, len(rows)))
    shown = len(rows)
    if row_h < 0.018:  # too many rows for one page: keep the first ones, say how many are left out
        row_h = 0.018
        shown = max(1, int((max_height - header_h) / row_h) - 1)
    size = 8.5 if row_h >= 0.026 else 7.0 if row_h >= 0.021 else 6.0
    y = top
    fig.add_artist(Rectangle((x0, y - header_h), total, header_h, transform=fig.transFigure, color=HEADER_COLOUR,
                             lw=0))
    x = x0
    for column in columns:
        w = column.width * scale
        fig.text(x + (w - 0.006 if column.align == "right" else 0.006), y - header_h / 2, column.header,
                 color="white", fontweight="bold", fontsize=7.5, ha=column.align, va="center", linespacing=1.2)
        x += w
    y -= header_h
    for index, (row, swatch) in enumerate(zip(rows[:shown], swatches[:shown])):
        if index % 2:
            fig.add_artist(Rectangle((x0, y - row_h), total, row_h, transform=fig.transFigure, color="#eef1f5", lw=0))
        x = x0
        for number, (column, text) in enumerate(zip(columns, row)):
            w = column.width * scale
            if number == 0:
                fig.add_artist(Rectangle((x + 0.006, y - row_h / 2 - 0.0065), 0.01, 0.013,
                                         transform=fig.transFigure, color=swatch, lw=0))
                fig.text(x + 0.022, y - row_h / 2, text, fontsize=size, va="center", fontweight="bold")
            else:
                fig.text(x + (w - 0.006 if column.align == "right" else 0.006), y - row_h / 2, text, fontsize=size,
                         ha=column.align, va="center")
            x += w
        y -= row_h
    fig.add_artist(Line2D([x0, x0 + total], [y, y], transform=fig.transFigure, color=HEADER_COLOUR, lw=0.8))
    if shown < len(rows):
        y -= 0.005
        fig.text(x0, y, more.format(count=len(rows) - shown), fontsize=7, color="#666666", va="top")
        y -= 0.02
    return y

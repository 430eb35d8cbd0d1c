"""Shared look of the report: colours of the PDF and of the ChimeraX script.

The scale colour map is viridis (perceptually uniform, readable in grey and by colour-blind readers),
always on the fixed range 0–1, in the PDF and in the ChimeraX script alike.
"""

from __future__ import annotations

#: colour map of every scale image, histogram and of the ChimeraX colouring
SCALE_CMAP = "viridis"

#: viridis at 0, 0.25, 0.5, 0.75 and 1 (matplotlib's values): the ChimeraX palette and key
VIRIDIS_STOPS = ((0.0, "#440154"), (0.25, "#3b528b"), (0.5, "#21918c"), (0.75, "#5ec962"), (1.0, "#fde725"))

#: one colour per class, the same on every page (tab10, by class number)
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")

DATA_COLOUR = "#4d4d4d"  # observed histograms
MODEL_COLOUR = "#d95f02"  # the fitted solvent Gaussian
CONFIDENCE_COLOUR = "#1b9e77"  # the confidence curve
CONTOUR_COLOUR = "#e6550d"  # the ChimeraX contour level drawn on the input slices
HEADER_COLOUR = "#2b3f5c"  # titles, table header
WARNING_COLOUR = "#b2182b"  # warnings about a map
HISTOGRAM_FILL = "#c9ced6"
SOLVENT_GREY = (0.93, 0.93, 0.93)  # where the scale is not shown (solvent)


def class_colour(number: int) -> str:
    """The colour of RELION class ``number`` (1-based) on every page."""
    return CLASS_COLOURS[(int(number) - 1) % len(CLASS_COLOURS)]


def chimerax_palette() -> str:
    """The scale palette as a ChimeraX ``value,colour:value,colour`` string (fixed 0–1)."""
    return ":".join(f"{value:g},{colour}" for value, colour in VIRIDIS_STOPS)

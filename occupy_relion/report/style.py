"""Shared look of the report: colours, labels of the derived settings and number formatting.

The scale colour map is viridis (perceptually uniform, readable in grey and by colour-blind readers),
always on the fixed range 0–1, in the PDF and in the ChimeraX script alike.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

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

#: settings that are not parameters (shown apart)
NOT_SETTINGS = ("warnings",)

#: human names (with units) of ScaleEstimate.settings, in the order the report lists them
SETTING_LABELS = {
    "mode": "Mode",
    "lowpass_angstrom": "Low-pass (Å)",
    "kernel_radius_angstrom": "Kernel radius (Å)",
    "kernel_voxels": "Kernel voxels",
    "tau": "Quantile τ",
    "tile_angstrom": "Reference tile edge (Å)",
    "reference_quantile": "Reference tile quantile",
    "working_pixel_angstrom": "Working pixel (Å)",
    "working_shape": "Working grid (voxels)",
    "solvent_region": "Solvent fitted in",
    "solvent_mean": "Solvent mean (low-passed)",
    "solvent_sd": "Solvent sd (low-passed)",
    "solvent_fraction": "Solvent fraction",
    "noise_floor": "Noise floor",
    "noise_floor_source": "Noise floor from",
    "reference_value": "Full-occupancy reference",
    "reference_position_angstrom": "Reference tile centre (x, y, z Å)",
    "reference_is_joint": "Joint reference (--joint)",
}


def class_colour(number: int) -> str:
    """The colour of RELION class ``number`` (1-based) on every page."""
    return CLASS_COLOURS[(int(number) - 1) % len(CLASS_COLOURS)]


def chimerax_palette() -> str:
    """The scale palette as a ChimeraX ``value,colour:value,colour`` string (fixed 0–1)."""
    return ":".join(f"{value:g},{colour}" for value, colour in VIRIDIS_STOPS)


def is_missing(value) -> bool:
    """None or NaN (infinity is a value: amplify γ = ∞)."""
    if value is None:
        return True
    if isinstance(value, Real) and not isinstance(value, bool):
        return math.isnan(float(value))
    return False


def fmt(value, digits: int = 4) -> str:
    """A compact, human form of a setting or statistic: 4 significant digits, '–' when missing."""
    if isinstance(value, np.generic):
        value = value.item()
    if is_missing(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        if math.isinf(float(value)):
            return "∞" if value > 0 else "−∞"
        return f"{float(value):.{digits}g}"
    if isinstance(value, (tuple, list, np.ndarray)):
        items = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(value, dtype=object).ravel()]
        if not items:
            return "none"
        if items and all(isinstance(v, Integral) and not isinstance(v, bool) for v in items):
            return " × ".join(str(int(v)) for v in items)  # a shape
        return ", ".join(fmt(v, digits) for v in items)
    return str(value)


def fmt_percent(fraction, digits: int = 1) -> str:
    """A fraction 0–1 as a percentage, '–' when missing."""
    if is_missing(fraction):
        return "–"
    return f"{100 * float(fraction):.{digits}f}"


def same_value(a, b) -> bool:
    """Whether two settings agree (numbers to 1e-6 relative, sequences element-wise)."""
    if isinstance(a, (tuple, list, np.ndarray)) or isinstance(b, (tuple, list, np.ndarray)):
        try:
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        except (TypeError, ValueError):
            return str(a) == str(b)
        return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=0))
    if isinstance(a, Real) and isinstance(b, Real) and not isinstance(a, bool) and not isinstance(b, bool):
        if is_missing(a) or is_missing(b):
            return is_missing(a) and is_missing(b)
        return math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=0.0)
    return a == b

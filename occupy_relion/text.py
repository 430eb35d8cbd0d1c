"""Numbers and values as people read them: one formatter for run.out, the report and the script."""

from __future__ import annotations

import math
from enum import Enum
from numbers import Integral, Real
from typing import Any

import numpy as np

#: what a missing value (None, NaN) reads as
MISSING = "–"


def is_missing(value: Any) -> bool:
    """None or NaN (infinity is a value: amplify γ = ∞)."""
    if value is None:
        return True
    if isinstance(value, Real) and not isinstance(value, bool):
        return math.isnan(float(value))
    return False


def fmt(value: Any, digits: int = 4) -> str:
    """A compact form of a setting or statistic: ``digits`` significant digits, '–' when missing."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Enum):
        value = value.value
    if is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        if math.isinf(float(value)):
            return "∞" if float(value) > 0 else "−∞"
        return f"{float(value):.{digits}g}"
    if isinstance(value, (tuple, list, np.ndarray)):
        items = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(value, dtype=object).ravel()]
        if not items:
            return "none"
        if all(isinstance(v, Integral) and not isinstance(v, bool) for v in items):
            return " × ".join(str(int(v)) for v in items)  # a shape
        return ", ".join(fmt(v, digits) for v in items)
    return str(value)


def fmt_percent(fraction: Any, digits: int = 1) -> str:
    """A fraction 0–1 as a percentage, '–' when missing."""
    if is_missing(fraction):
        return MISSING
    return f"{100 * float(fraction):.{digits}f}"


def size_text(shape: tuple[int, ...]) -> str:
    """A map's size x by y by z from its (z, y, x) shape, as in '64x64x48' (run.out, error lines)."""
    return "x".join(str(int(n)) for n in reversed(shape))

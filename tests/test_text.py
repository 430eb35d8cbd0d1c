"""One formatter for every number a person reads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from occupy_relion.core import NoiseFloorSource
from occupy_relion.text import fmt, fmt_percent, size_text


@pytest.mark.parametrize("value, digits, text", [
    (None, 4, "–"), (math.nan, 4, "–"), (math.inf, 4, "∞"), (-math.inf, 4, "−∞"), (True, 4, "yes"),
    (np.int64(33), 4, "33"), (0.000116234, 3, "0.000116"), (np.float32(10.5), 4, "10.5"),
    ((85, 85, 86), 4, "85 × 85 × 86"), ((1.0, 2.5, 3.25), 4, "1, 2.5, 3.25"), ((), 4, "none"),
    (NoiseFloorSource.SOLVENT_VOXELS, 4, "solvent voxels"), ("text", 4, "text"),
])
def test_fmt(value, digits, text):
    assert fmt(value, digits) == text


def test_percent_and_size():
    assert fmt_percent(0.3183) == "31.8" and fmt_percent(None) == "–"
    assert size_text((48, 40, 32)) == "32x40x48"  # x by y by z from a (z, y, x) shape

"""What a run shows a person: the PDF logfile and the ChimeraX script.

The job hands over small summaries, never full maps: :func:`summarise_class` takes the central
slices and histograms of one class right after it is processed, so the report costs no memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core import ScaleEstimate


@dataclass
class ClassSummary:
    """Everything the report shows of one class (small arrays only)."""

    number: int  # RELION class number (1-based)
    input_path: str  # input map, relative to the project directory
    scale_path: str  # outputs, relative to the project directory
    confidence_path: str
    equalised_path: str
    distribution: float | None  # _rlnClassDistribution (None for a lone map)
    resolution: float | None  # _rlnEstimatedResolution, Å
    pixel_size: float
    # central slices (z, y, x planes through the box centre) of input, scale and equalised maps
    input_slices: list[np.ndarray] = field(repr=False, default_factory=list)
    scale_slices: list[np.ndarray] = field(repr=False, default_factory=list)
    equalised_slices: list[np.ndarray] = field(repr=False, default_factory=list)
    # histogram of the low-passed map with the fitted solvent model (from ScaleEstimate.solvent)
    histogram_centres: np.ndarray = field(repr=False, default=None)
    histogram_counts: np.ndarray = field(repr=False, default=None)
    solvent_counts: np.ndarray = field(repr=False, default=None)
    confidence_curve: np.ndarray = field(repr=False, default=None)
    # histogram of the scale inside the molecule (confidence >= 0.5): counts over 50 bins on [0, 1]
    scale_histogram: np.ndarray = field(repr=False, default=None)
    statistics: dict = field(default_factory=dict)  # e.g. scale_median, scale_p05, scale_p95, molecule_voxels
    settings: dict = field(default_factory=dict)  # ScaleEstimate.settings
    seconds: float = 0.0

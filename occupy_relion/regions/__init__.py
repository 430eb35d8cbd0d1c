"""Region analysis across classes: pure, arrays and numbers in, arrays and typed results out.

:func:`analyse_regions` finds the consensus molecule and the regions whose occupancy differs between
classes (one map alone: its partial regions), with each region's edge-free occupancy per class and each
class's completeness; :func:`region_mask` makes a RELION-ready soft mask of some or all regions on the
map's own grid.
"""

from __future__ import annotations

from .analysis import (
    ClassCompleteness,
    Region,
    RegionAnalysis,
    RegionError,
    RegionParameters,
    analyse_regions,
)
from .masks import MaskParameters, region_mask, resample_selection, soft_mask, soften
from .occupancy import occupancy_map

__all__ = [
    "ClassCompleteness", "MaskParameters", "Region", "RegionAnalysis", "RegionError", "RegionParameters",
    "analyse_regions", "occupancy_map", "region_mask", "resample_selection", "soft_mask", "soften",
]

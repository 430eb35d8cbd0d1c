"""Per-class occupancy maps on the analysis grid: what the ChimeraX script colours the density by.

A voxel of a region reads that region's occupancy in the class; the rest of the consensus molecule
reads 1 (the constant part is what "full" is measured against); outside the molecule 0.  The colour of
drawn density then shows the occupancy of the part it belongs to, not the height of the contour.
"""

from __future__ import annotations

import numpy as np

from .analysis import RegionAnalysis


def occupancy_map(analysis: RegionAnalysis, class_number: int) -> np.ndarray:
    """float32 map on ``analysis.shape``: region occupancy of ``class_number`` per voxel (see module)."""
    result = analysis.molecule.astype(np.float32)
    for region in analysis.regions:
        result[analysis.labels == region.number] = np.float32(region.occupancy_of(class_number))
    return result

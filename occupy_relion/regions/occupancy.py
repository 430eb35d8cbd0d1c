"""Per-class occupancy maps on the analysis grid: what the ChimeraX script colours the density by.

Every voxel of the consensus molecule reads the occupancy of the part it belongs to in the class: a
region's edge-free occupancy, or the constant part's (:func:`constant_occupancy`, about 1: the part
"full" is measured against, read in that class).  A
contoured surface lies on the rim of density, where the molecule ends; so the value of each part is
carried outwards to every voxel within :func:`reach` of the molecule, each voxel taking the value of
the nearest molecule voxel.  The colour sampled on a surface then shows the occupancy of the part it
belongs to, whatever the contour level, and never a blend with the empty solvent.  Farther out (noise,
never molecule in any class) the map reads 0.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .analysis import RegionAnalysis

#: how far beyond the molecule (in edge widths) each part's occupancy is carried
REACH_EDGE_WIDTHS = 1.0


def reach(analysis: RegionAnalysis) -> float:
    """How far (Å) beyond the consensus molecule the occupancy maps carry each part's value."""
    assert analysis.parameters.edge_width is not None  # resolved parameters
    return REACH_EDGE_WIDTHS * float(analysis.parameters.edge_width)


def constant_occupancy(analysis: RegionAnalysis, class_number: int) -> float:
    """The edge-free occupancy of the constant part (the molecule outside every region) in ``class_number``.

    The analysis reads it to weigh each class's completeness; it is recovered exactly from that sum:
    completeness × molecule volume = constant volume × its occupancy + Σ region volume × occupancy.
    1 when the constant part has no volume to tell it from.
    """
    regions_volume = sum(r.volume_A3 for r in analysis.regions)
    constant_volume = analysis.molecule_volume_A3 - regions_volume
    if not constant_volume > 1e-6 * max(analysis.molecule_volume_A3, 1e-30):
        return 1.0
    weighted = analysis.completeness_of(class_number).completeness * analysis.molecule_volume_A3
    weighted -= sum(r.volume_A3 * r.occupancy_of(class_number) for r in analysis.regions)
    return float(np.clip(weighted / constant_volume, 0.0, 1.0))


def part_labels(analysis: RegionAnalysis) -> np.ndarray:
    """int16 map on ``analysis.shape``: the region number of each voxel, -1 for the constant part
    of the molecule, both carried outwards to the voxels within :func:`reach`; 0 beyond."""
    parts = np.where(analysis.molecule, np.int16(-1), np.int16(0))
    regions = analysis.labels > 0
    parts[regions] = analysis.labels[regions]
    inside = parts != 0
    if not inside.any():
        return parts
    distance, indices = ndimage.distance_transform_edt(~inside, sampling=analysis.spacing, return_indices=True)
    near = distance <= reach(analysis)
    nearest = parts[tuple(index[near] for index in indices)]
    out = np.zeros(analysis.shape, dtype=np.int16)
    out[near] = nearest
    return out


def occupancy_map(analysis: RegionAnalysis, class_number: int, parts: np.ndarray | None = None) -> np.ndarray:
    """float32 map on ``analysis.shape``: the occupancy in ``class_number`` of the part each voxel belongs
    to (see the module docstring).  ``parts``: :func:`part_labels` of the analysis, when already made
    (it is the same for every class)."""
    if parts is None:
        parts = part_labels(analysis)
    values = np.zeros(len(analysis.regions) + 2, dtype=np.float32)  # index: region number; -1: constant
    values[-1] = constant_occupancy(analysis, class_number)
    for region in analysis.regions:
        values[region.number] = region.occupancy_of(class_number)
    return values[parts]

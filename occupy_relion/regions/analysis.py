"""Regions whose occupancy differs between classes, their occupancy in every class, and each class's
completeness, all read away from the edges of density.

Input: every class's scale and confidence map on one common grid, all normalised by one common
reference (``core.joint_reference``); or one map alone.  The *consensus* at a voxel is the largest
scale any class has there.

- **Molecule**: the voxels that are molecule in at least one class (confidence ≥ 0.5 and scale ≥ 0.05,
  the rule of ``core.molecule_scale``), without pieces smaller than ``min_volume``.
- **Edge-free voxels**: where the consensus (smoothed over ``edge_width / 2``) reaches ``core_level``
  of its maximum within ``edge_width`` Å.  A local maximum reads low wherever density falls off (the
  rim of a domain, the slope towards a weaker neighbour): only where no stronger density is near does
  the scale mean occupancy.  A part's **core** is its edge-free voxels at least ``edge_width / 2`` Å
  from the other parts, whose density a local maximum carries over the border.
- **Full level**: the classes' median scale over the constant part's core, the median of those over
  the classes.  Occupancy is scale / full level, clipped to [0, 1]: fully occupied density reads 1
  whichever tile the reference came from.
- **Regions**, several classes: connected voxels whose occupancy differs by at least
  ``min_difference`` between classes and that share one pattern across classes (occupancies divided
  by the largest, alike within ``similarity``; the pattern holds out to a domain's rim, where every
  class falls off alike), grown from the deepest edge-free voxel left; then each voxel goes with the
  nearest core, its region's or strong constant density's (noise lets a pattern reach across where
  domains meet).  One map: the voxels nearer to edge-free molecule read below ``1 − min_difference``
  than to edge-free full density (the rim of full density, which reads low, goes with the full
  density), cut at half their own level.  Several classes also get the one-map regions of their
  consensus, outside the regions that differ: density *partial in every class* (a classification
  that mixes the states, what focused classification is for).  A region is kept if it holds a core
  of at least a ball of ``edge_width`` diameter and its core confirms it is variable (differs by
  ``min_difference`` between classes, or its fullest class is that far below full); numbered from
  1, most variable first.  A piece whose fullest class reads below ``ABSENT_STATE`` (what the
  descriptions call absent, in every class: noise that passed the confidence, a weak fringe) is no
  region and is left out of the molecule (``weak_volume_A3``), and so are the molecule voxels of a
  one-map piece that is not mostly one body (``scattered_volume_A3``).
- **Completeness** of a class: the occupancy of the whole molecule, each region and the constant part
  weighted by its half-maximum volume.  A class lacking a domain reads lower by about that domain's
  share.  Each class's median and partial fraction are taken over the molecule's edge-free voxels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..core.filters import ball_maximum

#: a voxel is molecule in a class when its confidence and scale reach these (as core.molecule_scale)
MOLECULE_CONFIDENCE = 0.5
MOLECULE_MIN_SCALE = 0.05
#: fewest core voxels the constant part's full level is taken from (else the whole molecule's)
_MIN_CORE_VOXELS = 20
#: occupancy levels that name a region's state in a class (description only)
FULL_STATE, ABSENT_STATE = 0.75, 0.15

Spacing = tuple[float, float, float]


class RegionError(ValueError):
    """The maps cannot be analysed together (different grids, no molecule, ...)."""


@dataclass(frozen=True)
class RegionParameters:
    """Settings of the region analysis; ``None`` means 'derive from the maps' low-pass'.

    ``min_difference``: occupancy difference between classes (one map: below full) that makes a region.
    ``edge_width`` (Å, default the low-pass): how far a density edge lowers the scale.
    ``core_level``: the share of the local maximum of the consensus a core voxel reaches.
    ``min_volume`` (Å³, default a ball of radius low-pass): the smallest region and molecule piece.
    ``similarity``: how alike the patterns across classes are within one region.
    ``max_regions``: at most this many regions, the most variable.
    """

    min_difference: float = 0.25
    edge_width: float | None = None
    core_level: float = 0.75
    min_volume: float | None = None
    similarity: float = 0.35
    max_regions: int = 20

    def __post_init__(self) -> None:
        for name in ("min_difference", "core_level"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), not {getattr(self, name)}")
        if not 0 < self.similarity <= 1:
            raise ValueError(f"similarity must be in (0, 1], not {self.similarity}")
        for name in ("edge_width", "min_volume"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")
        if isinstance(self.max_regions, bool) or not isinstance(self.max_regions, int) or self.max_regions < 1:
            raise ValueError(f"max_regions must be an integer ≥ 1, not {self.max_regions!r}")

    def resolved(self, lowpass: float) -> RegionParameters:
        """The same parameters with every default filled in for scale maps low-passed to ``lowpass`` Å."""
        if not (math.isfinite(lowpass) and lowpass > 0):
            raise ValueError(f"lowpass must be a positive number of Å, not {lowpass}")
        edge = self.edge_width if self.edge_width is not None else float(lowpass)
        volume = self.min_volume if self.min_volume is not None else 4 / 3 * math.pi * float(lowpass) ** 3
        return RegionParameters(self.min_difference, edge, self.core_level, volume, self.similarity, self.max_regions)


@dataclass(frozen=True)
class Region:
    """One region: ``occupancy[i]`` is its edge-free occupancy (0–1) in class ``classes[i]``."""

    number: int
    voxels: int  # on the analysis grid
    core_voxels: int  # where the occupancy was read
    volume_A3: float  # where its best class reaches half its core's level: the domain's own size
    centre_A: tuple[float, float, float]  # x, y, z from the centre of voxel (0, 0, 0)
    classes: tuple[int, ...]
    occupancy: tuple[float, ...]
    description: str

    @property
    def variability(self) -> float:
        """Largest occupancy difference between classes, or how far below full the fullest class is
        if that is more (one map: how far below full)."""
        return _variability(self.occupancy)

    def occupancy_of(self, class_number: int) -> float:
        """This region's occupancy in ``class_number``."""
        return self.occupancy[self.classes.index(class_number)]


@dataclass(frozen=True)
class ClassCompleteness:
    """One class, edge-free: ``completeness`` = occupancy of the whole molecule (regions and constant
    part weighted by volume); ``median`` and ``partial_fraction`` (share below 0.5) of the occupancy
    over the molecule's core; ``rank`` 1 = most complete."""

    class_number: int
    completeness: float
    median: float
    partial_fraction: float
    rank: int


@dataclass(frozen=True)
class RegionAnalysis:
    """The consensus molecule and its regions on the analysis grid (``shape``; ``spacing`` Å per voxel
    along z, y, x): ``molecule`` (bool) and ``labels`` (int16: region number, 0 elsewhere)."""

    classes: tuple[int, ...]
    shape: tuple[int, int, int]
    spacing: Spacing
    molecule: np.ndarray
    labels: np.ndarray
    regions: tuple[Region, ...]
    completeness: tuple[ClassCompleteness, ...]
    full_level: float  # the scale that counts as occupancy 1
    molecule_volume_A3: float
    parameters: RegionParameters  # resolved
    #: density left out of the molecule because it reads below ``ABSENT_STATE`` in every class
    weak_volume_A3: float = 0.0
    #: molecule left out because it is scattered blobs, not one body (noise that passed the confidence)
    scattered_volume_A3: float = 0.0

    def region(self, number: int) -> Region:
        """Region ``number`` (numbered from 1)."""
        return self.regions[number - 1]

    def selection(self, numbers: Sequence[int] | None = None) -> np.ndarray:
        """Boolean map of the given regions (``None``: every region, the variable part)."""
        if numbers is None:
            return self.labels > 0
        return np.isin(self.labels, np.asarray(list(numbers), dtype=self.labels.dtype))

    def completeness_of(self, class_number: int) -> ClassCompleteness:
        """The completeness of ``class_number``."""
        return self.completeness[self.classes.index(class_number)]

    @property
    def ranked_classes(self) -> tuple[int, ...]:
        """Class numbers, most complete first."""
        return tuple(c.class_number for c in sorted(self.completeness, key=lambda c: c.rank))


def _variability(occupancy: Sequence[float] | np.ndarray) -> float:
    """The larger of the largest difference between classes and how far below full the fullest class
    is; one map: how far below full.  A region partial in every class (a classification that mixes
    the states) is as variable as one that differs between classes."""
    return float(max(max(occupancy) - min(occupancy), 1 - max(occupancy)))


def _spacing(spacing: float | Sequence[float]) -> Spacing:
    if isinstance(spacing, (int, float, np.floating)):
        values: tuple[float, ...] = (float(spacing),) * 3
    else:
        values = tuple(float(s) for s in spacing)
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise RegionError(f"spacing must be one or three positive numbers of Å, not {spacing}")
    return values  # three entries, checked above


def _check_maps(scale: Mapping[int, np.ndarray], confidence: Mapping[int, np.ndarray]) -> tuple[int, ...]:
    classes = tuple(sorted(scale))
    if not classes:
        raise RegionError("no class maps to analyse")
    if set(confidence) != set(classes):
        raise RegionError(f"scale maps of classes {classes} but confidence maps of {tuple(sorted(confidence))}")
    shape = np.shape(scale[classes[0]])
    if len(shape) != 3:
        raise RegionError(f"maps must be 3D, not of shape {shape}")
    for number in classes:
        for kind, maps in (("scale", scale), ("confidence", confidence)):
            if np.shape(maps[number]) != shape:
                raise RegionError(f"class {number}'s {kind} map has shape {np.shape(maps[number])}, not {shape}")
    return classes


def _bounding_box(mask: np.ndarray, margin: Sequence[int]) -> tuple[slice, ...]:
    """The smallest box holding every True voxel, widened by ``margin`` voxels per axis (clipped)."""
    box = []
    for axis in range(3):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(0, int(hit[0]) - margin[axis]), min(mask.shape[axis], int(hit[-1]) + 1 + margin[axis])))
    return tuple(box)


def _depth(mask: np.ndarray, spacing: Spacing) -> np.ndarray:
    """Distance (Å) of every voxel of ``mask`` to the nearest voxel outside it (beyond the box counts as
    outside); 0 outside."""
    padded = np.pad(mask, 1)
    return ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


def _without_small_pieces(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    """``mask`` without its face-connected pieces of fewer than ``min_voxels`` voxels."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    keep = np.bincount(labels.ravel()) >= min_voxels
    keep[0] = False
    return keep[labels]


def _molecule(
    scale: Mapping[int, np.ndarray], confidence: Mapping[int, np.ndarray], classes: Sequence[int]
) -> np.ndarray:
    molecule = np.zeros(np.shape(scale[classes[0]]), dtype=bool)
    for number in classes:
        molecule |= ((np.asarray(confidence[number]) >= MOLECULE_CONFIDENCE)
                     & (np.asarray(scale[number]) >= MOLECULE_MIN_SCALE))
    return molecule


def _part_core(part: np.ndarray, edge_free: np.ndarray, spacing: Spacing, edge_width: float) -> np.ndarray:
    """Edge-free voxels of ``part`` at least ``edge_width / 2`` Å from its boundary (may be empty)."""
    core = part & edge_free
    if core.any():
        core &= _depth(part, spacing) >= 0.5 * edge_width
    return core


def _typical_median(scales: Sequence[np.ndarray], where: np.ndarray) -> float:
    """The classes' median scale over ``where``, and of those the median class's value."""
    return float(np.median([np.median(s[where]) for s in scales]))


def _grow_by_pattern(
    scales: Sequence[np.ndarray], candidates: np.ndarray, edge_free: np.ndarray, level: float,
    p: RegionParameters, spacing: Spacing, min_voxels: float,
) -> list[np.ndarray]:
    """Split the candidates into regions of one pattern across classes, each grown from the deepest
    remaining edge-free candidate: the connected candidates whose pattern (occupancies / the largest)
    is within ``similarity`` of the seed's, then of the median pattern of that first growth."""
    index = np.flatnonzero(candidates)
    if index.size == 0:
        return []
    profile = np.stack([np.minimum(s.ravel()[index] * np.float32(1 / level), 1) for s in scales])
    profile /= np.maximum(profile.max(axis=0), np.float32(1e-6))
    depth = np.where(edge_free.ravel()[index], _depth(candidates, spacing).ravel()[index], -1.0)
    remaining = np.ones(index.size, dtype=bool)
    grid = np.zeros(candidates.shape, dtype=bool)
    regions = []
    for _ in range(4 * p.max_regions + 10):
        open_depth = np.where(remaining, depth, -1.0)
        seed = int(np.argmax(open_depth))
        if open_depth[seed] < 0:
            break
        pattern = profile[:, seed]
        for _refine in range(2):
            similar = remaining & (np.abs(profile - pattern[:, None]).max(axis=0) <= p.similarity)
            similar[seed] = True
            grid.fill(False)
            grid.ravel()[index[similar]] = True
            labels, _ = ndimage.label(grid)
            member = labels.ravel()[index] == labels.ravel()[index[seed]]
            pattern = np.median(profile[:, member], axis=1)
        remaining &= ~member
        if member.sum() >= min_voxels:
            region = np.zeros(candidates.shape, dtype=bool)
            region.ravel()[index[member]] = True
            regions.append(region)
    return regions


def _mostly_one_body(mask: np.ndarray) -> bool:
    """Whether one connected piece holds at least half of ``mask``'s voxels.  A weak domain's molecule
    is one body (≥ 95 % in one piece on the synthetic tests, at 2.5× noise too); the noise blobs around
    EMD-5168's filament that pass the confidence are a dozen pieces, the largest a fifth of them."""
    pieces, count = ndimage.label(mask)
    if not count:
        return False
    sizes = np.bincount(pieces.ravel())[1:]
    return bool(2 * sizes.max() >= sizes.sum())


def _partial_basins(
    scale: np.ndarray, edge_free: np.ndarray, molecule: np.ndarray, level: float, p: RegionParameters,
    spacing: Spacing, min_voxels: float, scattered: np.ndarray,
) -> list[np.ndarray]:
    """One map: the voxels nearest to edge-free molecule voxels read below full rather than to
    edge-free full density (so the rim of full density, which reads low, goes with it), each piece cut
    at half its own seeds' median scale (the faint fringe around the molecule joins everything).
    The molecule voxels of pieces that are not mostly one body (scattered blobs) are set in
    ``scattered`` (same shape as ``scale``)."""
    full = scale >= np.float32((1 - p.min_difference) * level)
    seeds = edge_free & molecule & ~full
    if not seeds.any():
        return []
    indices = np.empty((3, *scale.shape), dtype=np.int32)
    ndimage.distance_transform_edt(~(seeds | (edge_free & full)), sampling=spacing, return_distances=False,
                                   return_indices=True, indices=indices)
    nearer_partial = seeds[tuple(indices)]
    del indices
    pieces, _ = ndimage.label(nearer_partial & (scale >= MOLECULE_MIN_SCALE))
    regions = []
    for k, where in enumerate(ndimage.find_objects(pieces), start=1):
        if where is None:
            continue
        piece = pieces[where] == k
        inside = piece & seeds[where]
        if not inside.any():
            continue
        body, count = ndimage.label(piece & (scale[where] >= 0.5 * float(np.median(scale[where][inside]))))
        sizes = np.bincount(body.ravel())
        for j in range(1, count + 1):
            if sizes[j] < min_voxels:
                continue
            blobs = molecule[where] & (body == j)
            if _mostly_one_body(blobs):
                region = np.zeros(scale.shape, dtype=bool)
                region[where] = body == j
                regions.append(region)
            else:
                # a weak domain is one body of molecule; scattered noise blobs that the faint fringe
                # joins into one sprawling piece (a noisy shell around a filament) are not
                scattered[where] |= blobs
    return regions


def _description(classes: Sequence[int], occupancy: Sequence[float]) -> str:
    """'absent in class 2; partial in class 3 (0.48); full in classes 1, 4', or 'partial (0.48)' for one map."""
    def state(value: float) -> str:
        return "full" if value >= FULL_STATE else "absent" if value < ABSENT_STATE else "partial"

    if len(classes) == 1:
        return f"{state(occupancy[0])} ({occupancy[0]:.2f})"
    groups: dict[str, list[tuple[int, float]]] = {"absent": [], "partial": [], "full": []}
    for number, value in zip(classes, occupancy):
        groups[state(value)].append((number, value))
    parts = []
    for name, members in groups.items():
        if members:
            numbers = ", ".join(str(n) for n, _ in members)
            values = f" ({', '.join(f'{v:.2f}' for _, v in members)})" if name == "partial" else ""
            parts.append(f"{name} in class{'es' if len(members) > 1 else ''} {numbers}{values}")
    return "; ".join(parts)


def analyse_regions(
    scale: Mapping[int, np.ndarray],
    confidence: Mapping[int, np.ndarray],
    spacing: float | Sequence[float],
    lowpass: float,
    parameters: RegionParameters = RegionParameters(),
    threads: int = 1,
) -> RegionAnalysis:
    """Regions, their occupancy per class and every class's completeness (see the module docstring).

    ``scale`` / ``confidence``: class number → map, all on one grid of ``spacing`` Å per voxel (one
    number, or z, y, x) and normalised by one common reference; one class for a map alone.
    ``lowpass``: the low-pass (Å) of the scale maps; it sets the defaults of ``parameters``.
    """
    classes = _check_maps(scale, confidence)
    step = _spacing(spacing)
    p = parameters.resolved(lowpass)
    assert p.edge_width is not None and p.min_volume is not None
    voxel_volume = step[0] * step[1] * step[2]
    min_voxels = p.min_volume / voxel_volume
    shape: tuple[int, int, int] = tuple(int(n) for n in np.shape(scale[classes[0]]))  # type: ignore[assignment]

    molecule_full = _without_small_pieces(_molecule(scale, confidence, classes), min_voxels)
    if not molecule_full.any():
        raise RegionError("no molecule: no class has density that stands out of its solvent")
    # all further work is on the molecule's box, widened by the edge width (views of the maps, no copies)
    box = _bounding_box(molecule_full, [math.ceil(p.edge_width / s) + 1 for s in step])
    molecule = molecule_full[box]
    # the scale is linear and may exceed 1 a little where density is stronger than the reference's
    # typical value: the analysis reads occupancy in [0, 1], so it is clipped there (a view-sized copy)
    scales = [np.minimum(np.asarray(scale[n], dtype=np.float32)[box], np.float32(1)) for n in classes]
    consensus = np.maximum.reduce(scales) if len(scales) > 1 else scales[0]
    smooth = ndimage.gaussian_filter(consensus, [0.5 * p.edge_width / s for s in step], mode="nearest")
    edge_free = smooth >= np.float32(p.core_level) * ball_maximum(smooth, p.edge_width, step, threads)
    molecule_core = molecule & edge_free
    if not molecule_core.any():
        molecule_core = molecule

    # a provisional full level from the whole molecule's core, then the constant part's
    level = _typical_median(scales, molecule_core)
    if not level > 0:
        raise RegionError("no molecule: the scale is zero in the core of the molecule in every class")
    scattered = np.zeros(molecule.shape, dtype=bool)  # molecule voxels of scattered blobs (_partial_basins)
    if len(scales) > 1:
        high = np.minimum(consensus * np.float32(1 / level), 1)
        low = np.minimum(np.minimum.reduce(scales) * np.float32(1 / level), 1)
        candidates = _without_small_pieces(high - low >= p.min_difference, min_voxels)
        del high, low
        found = _grow_by_pattern(scales, candidates, edge_free, level, p, step, min_voxels)
        # partial in every class: the consensus read as one map, where no class differs enough
        found += [basin for basin in (basin & ~candidates for basin in _partial_basins(
            consensus, edge_free, molecule, level, p, step, min_voxels, scattered)) if basin.sum() >= min_voxels]
        scattered &= ~candidates
        molecule = molecule | candidates  # density that differs between classes is molecule
    else:
        found = _partial_basins(scales[0], edge_free, molecule, level, p, step, min_voxels, scattered)
    min_core_voxels = 4 / 3 * math.pi * (0.5 * p.edge_width) ** 3 / voxel_volume
    measured = []
    weak = np.zeros(molecule.shape, dtype=bool)
    for mask in found:
        core = _part_core(mask, edge_free, step, p.edge_width)
        if core.sum() >= min_core_voxels:  # thinner than an edge-free core: no occupancy to tell
            medians = np.array([np.median(s[core]) for s in scales], dtype=np.float64)
            provisional = np.clip(medians / level, 0, 1)
            if provisional.max() < ABSENT_STATE:
                # absent in every class (noise that passed the confidence, a faint fringe): a region
                # "absent in classes 1, 2" would rank most variable; neither a region nor molecule
                weak |= mask
            elif _variability(provisional) >= p.min_difference:
                measured.append((mask, core, medians))
    weak_volume = float(np.count_nonzero(weak & molecule)) * voxel_volume
    scattered &= ~weak
    scattered_volume = float(np.count_nonzero(scattered & molecule)) * voxel_volume
    weak |= scattered
    if weak.any():
        molecule &= ~weak
        molecule_core = molecule_core & ~weak if (molecule_core & ~weak).any() else molecule
    # the most variable first (ranked again below on the final level), at most max_regions
    measured.sort(key=lambda r: (-_variability(np.clip(r[2] / level, 0, 1)), -int(r[0].sum())))
    measured = measured[: p.max_regions]
    if measured and len(scales) > 1:
        rest = molecule.copy()
        for mask, _, _ in measured:
            rest &= ~mask
        strong = consensus >= np.float32(0.5 * level)
        measured = _trim_to_nearest_core(measured, rest & edge_free & strong, step)
        del strong
    rest = molecule.copy()
    for mask, _, _ in measured:
        rest &= ~mask
    rest_core = _part_core(rest, edge_free, step, p.edge_width)
    if np.count_nonzero(rest_core) >= _MIN_CORE_VOXELS:
        level = _typical_median(scales, rest_core)
    else:
        rest_core = rest  # a constant part too thin for a core: all of it
    full_level = float(level)

    ranked = sorted(((mask, core, tuple(float(v) for v in np.clip(medians / full_level, 0, 1)))
                     for mask, core, medians in measured),
                    key=lambda r: (-_variability(r[2]), -int(r[0].sum())))
    labels = np.zeros(shape, dtype=np.int16)
    label_box = labels[box]
    offset = np.array([b.start for b in box], dtype=np.float64)
    regions = []
    for number, (mask, core, occupancy) in enumerate(ranked, start=1):
        label_box[mask] = number
        centroid = (np.array(ndimage.center_of_mass(mask)) + offset) * np.array(step)
        regions.append(Region(
            number=number, voxels=int(mask.sum()), core_voxels=int(core.sum()),
            volume_A3=_half_maximum_voxels(mask, core, consensus) * voxel_volume,
            centre_A=(float(centroid[2]), float(centroid[1]), float(centroid[0])),
            classes=classes, occupancy=occupancy, description=_description(classes, occupancy)))

    rest_volume = _half_maximum_voxels(rest, rest_core, consensus) * voxel_volume if rest.any() else 0.0
    rest_occupancy = [float(np.clip(np.median(s[rest_core]) / full_level, 0, 1)) if rest_core.any() else 0.0
                      for s in scales]
    completeness = _completeness(scales, classes, regions, rest_volume, rest_occupancy, molecule_core, full_level)
    molecule_out = np.zeros(shape, dtype=bool)
    molecule_out[box] = molecule
    return RegionAnalysis(
        classes=classes, shape=shape, spacing=step, molecule=molecule_out, labels=labels,
        regions=tuple(regions), completeness=completeness, full_level=full_level,
        molecule_volume_A3=rest_volume + sum(r.volume_A3 for r in regions), parameters=p,
        weak_volume_A3=weak_volume, scattered_volume_A3=scattered_volume)


def _trim_to_nearest_core(measured: list, constant: np.ndarray, spacing: Spacing) -> list:
    """Each region without the voxels nearer to edge-free constant density than to its own core: where
    a region meets a constant domain its pattern fades gradually, and noise lets it reach across."""
    seeds = np.zeros(constant.shape, dtype=np.int16)
    seeds[constant] = -1
    for number, (_, core, _) in enumerate(measured, start=1):
        seeds[core] = number
    indices = np.empty((3, *constant.shape), dtype=np.int32)
    ndimage.distance_transform_edt(seeds == 0, sampling=spacing, return_distances=False, return_indices=True,
                                   indices=indices)
    nearest = seeds[tuple(indices)]
    del indices
    return [(mask & (nearest == number), core, medians)
            for number, (mask, core, medians) in enumerate(measured, start=1)]


def _half_maximum_voxels(part: np.ndarray, core: np.ndarray, consensus: np.ndarray) -> float:
    """Voxels of ``part`` where the consensus reaches half its median over the part's core: the part's
    own size, whatever its occupancy, and free of the weak rim and noise a wider mask takes in."""
    half = 0.5 * float(np.median(consensus[core]))
    return float(np.count_nonzero(consensus[part] >= half))


def _completeness(
    scales: Sequence[np.ndarray], classes: tuple[int, ...], regions: Sequence[Region], rest_volume: float,
    rest_occupancy: Sequence[float], molecule_core: np.ndarray, full_level: float,
) -> tuple[ClassCompleteness, ...]:
    """Each class's completeness (regions and constant part weighted by their half-maximum volumes),
    median and partial fraction over the molecule's core, and its rank."""
    total = rest_volume + sum(r.volume_A3 for r in regions)
    values = []
    for i, s in enumerate(scales):
        weighted = rest_volume * rest_occupancy[i] + sum(r.volume_A3 * r.occupancy[i] for r in regions)
        inside = s[molecule_core] * np.float32(1 / full_level)
        values.append((weighted / total if total > 0 else 0.0, float(np.clip(np.median(inside), 0, 1)),
                       float(np.mean(inside < 0.5))))
    order = sorted(range(len(classes)), key=lambda i: -values[i][0])
    rank = {i: r for r, i in enumerate(order, start=1)}
    return tuple(ClassCompleteness(classes[i], *values[i], rank=rank[i]) for i in range(len(classes)))

"""The typed result of a run: one frozen :class:`ClassResult` per class, and the run's description.

The job makes them (``job/classes.py``), and every consumer reads them: run.out (``job/log.py``),
occupancy.star (``relion/summary.py`` via ``job/outputs.py``), the PDF and the ChimeraX script
(``report/``).  Full maps never travel here: only numbers and the small arrays the report draws,
all computed once (the view by ``report/summary.py``, from the core's own functions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .core import EstimateSettings, molecule_scale, molecule_statistics
from .regions import RegionAnalysis
from .relion.version import RelionVersion

#: the modified maps a class can have, in the order they are written and listed
MODIFIED_KINDS = ("equalised", "attenuated", "sigmoid")

#: EstimateSettings that are the same for every class of a run (run.out and occupancy.star give them once)
SHARED_SETTINGS = ("lowpass_angstrom", "kernel_radius_angstrom", "kernel_voxels", "tau", "tile_angstrom",
                   "working_pixel_angstrom", "working_shape")


@dataclass(frozen=True)
class MoleculeStatistics:
    """The scale inside the molecule (``core.molecule_scale``); zeros for an empty molecule."""

    molecule_voxels: int
    scale_mean: float
    scale_sd: float
    scale_median: float
    scale_p05: float
    scale_p95: float
    partial_fraction: float  # share of molecule voxels with scale below 0.5

    @classmethod
    def of(cls, scale: np.ndarray, confidence: np.ndarray) -> MoleculeStatistics:
        """The statistics of full-size scale and confidence maps (``core.scale_statistics``)."""
        return cls.of_molecule(molecule_scale(scale, confidence))

    @classmethod
    def of_molecule(cls, inside: np.ndarray) -> MoleculeStatistics:
        """The statistics of the molecule's scale values (``core.molecule_statistics``)."""
        found = molecule_statistics(inside)
        return cls(molecule_voxels=int(found["molecule_voxels"]), scale_mean=found["scale_mean"],
                   scale_sd=found["scale_sd"], scale_median=found["scale_median"], scale_p05=found["scale_p05"],
                   scale_p95=found["scale_p95"], partial_fraction=found["partial_fraction"])


@dataclass(frozen=True)
class ClassOutputs:
    """Where a class's maps are written, relative to the project directory."""

    scale: str
    confidence: str
    equalised: str
    attenuated: str | None = None
    sigmoid: str | None = None

    def modified(self) -> tuple[tuple[str, str], ...]:
        """(kind, path) of every modified map written, in :data:`MODIFIED_KINDS` order."""
        paths = {"equalised": self.equalised, "attenuated": self.attenuated, "sigmoid": self.sigmoid}
        return tuple((kind, path) for kind in MODIFIED_KINDS if (path := paths[kind]) is not None)


@dataclass(frozen=True)
class CentralSlices:
    """The xy, xz and yz planes through the box centre of each map (float32)."""

    input: tuple[np.ndarray, ...]
    scale: tuple[np.ndarray, ...]
    confidence: tuple[np.ndarray, ...]
    equalised: tuple[np.ndarray, ...]


@dataclass(frozen=True)
class SolventHistogram:
    """The histogram the solvent was fitted to, on an axis in solvent sd from the solvent mean."""

    edges: np.ndarray  # bin edges, in solvent sd
    centres: np.ndarray
    counts: np.ndarray  # voxels of the working grid per bin
    model: np.ndarray  # what the fitted solvent Gaussian predicts per bin
    confidence: np.ndarray  # the confidence curve at the bin centres
    molecule_edge: float | None  # where the confidence reaches 0.5 (the molecule starts), or None


@dataclass(frozen=True)
class ScaleHistogram:
    """The scale inside the molecule: share of its voxels per bin on [0, 1], and percentiles."""

    edges: np.ndarray
    percent: np.ndarray  # of molecule voxels; all zero for an empty molecule
    percentiles: np.ndarray | None  # at report.summary.SCALE_PERCENTILES; None for an empty molecule


#: what the ChimeraX contour is measured in: the full map's solvent noise, or (when that could not be
#: measured) the low-passed map's solvent sd; the level is the solvent mean + CONTOUR_SIGMAS of it
ContourBasis = Literal["solvent noise sd", "low-passed solvent sd"]


@dataclass(frozen=True)
class ClassView:
    """What the report draws of a class, every number computed by ``report.summary``."""

    box_shape: tuple[int, int, int]  # (z, y, x) voxels of the input map
    slices: CentralSlices
    input_range: tuple[float, float]  # grey range of the input slices
    equalised_range: tuple[float, float]  # grey range of the equalised slices
    solvent: SolventHistogram
    scale: ScaleHistogram
    molecule_fraction: float  # molecule voxels as a share of the box
    noise_sd: float | None  # sd of the solvent noise of the full-resolution input map
    contour_level: float  # the ChimeraX level (and the line on the input slices)
    contour_basis: ContourBasis


@dataclass(frozen=True)
class ClassResult:
    """Everything that is kept of one processed class."""

    number: int  # RELION's class (or body) number
    input_path: str  # the map analysed, relative to the project directory
    distribution: float | None  # _rlnClassDistribution (None for a lone map)
    resolution: float | None  # _rlnEstimatedResolution, Å (None when unknown)
    pixel_size: float
    outputs: ClassOutputs
    settings: EstimateSettings
    statistics: MoleculeStatistics
    view: ClassView
    seconds: float

    @property
    def measurable(self) -> bool:
        """Whether the class's numbers mean anything (``settings.measurability``); when not, occupancy.star
        gives −1 and the class takes no part in the regions or a joint reference."""
        return self.settings.measurability.measurable


@dataclass(frozen=True)
class RunDescription:
    """What the report's first page says about the run (labels in ``labels.py``)."""

    input: str
    input_kind: str
    model_path: str | None
    relion_version: RelionVersion
    job_dir: str  # as RELION names it, with a trailing slash
    command_line: str
    pixel_size: float
    parameters: tuple[tuple[str, object], ...]  # (PARAMETER_LABELS key, value), resolved lengths included
    joint: bool
    joint_reference: float | None


#: a plane of a (z, y, x) map: xy (cut along z), xz (along y) or yz (along x)
Plane = Literal["xy", "xz", "yz"]


@dataclass(frozen=True)
class RegionsSlice:
    """One plane of the analysis grid, cropped to the molecule: every class's occupancy there (scale /
    the analysis' full level, clipped to [0, 1]), the region labels and the consensus molecule."""

    plane: Plane
    index: int  # voxel index of the cut along its axis (analysis grid)
    position_A: float  # the cut's position along its axis, Å
    extent_A: tuple[float, float, float, float]  # left, right, bottom, top of the window, Å (voxel edges)
    occupancy: tuple[np.ndarray, ...]  # float32 (rows: vertical axis), one per class in RegionsView.classes order
    labels: np.ndarray  # int16: region number, 0 elsewhere
    molecule: np.ndarray  # bool: the consensus molecule

    @property
    def axes(self) -> tuple[str, str, str]:
        """(horizontal, vertical, cut) axis names."""
        return {"xy": ("x", "y", "z"), "xz": ("x", "z", "y"), "yz": ("y", "z", "x")}[self.plane]


@dataclass(frozen=True)
class RegionsView:
    """What the report draws of the regions, computed by ``report.summary.regions_view`` from the
    analysis and the classes' scale maps on the analysis grid (small arrays only)."""

    classes: tuple[int, ...]
    full_level: float  # the scale that counts as occupancy 1 (the analysis')
    regions: tuple[RegionsSlice, ...] = ()  # one per region, in region order: the plane through its centre
    #                                          where its section is largest
    comparison: tuple[RegionsSlice, ...] = ()  # xy, xz, yz through the centre of the variable part
    #                                             (of the molecule when there is no region)


@dataclass(frozen=True)
class RegionsResult:
    """The cross-class analysis of a run and the files the job wrote for it (project-relative)."""

    analysis: RegionAnalysis  # regions, their occupancy per class, completeness; labels on its grid
    region_masks: tuple[str, ...]  # regionNNN_mask.mrc, in region order
    variable_mask: str | None  # variable_mask.mrc (every region), None when there is no region
    occupancy_maps: tuple[tuple[int, str], ...]  # (class, classNNN_occupancy.mrc): ChimeraX colours by it
    view: RegionsView | None = None  # None when the report is not drawn

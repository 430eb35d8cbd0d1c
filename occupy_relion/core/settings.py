"""The settings an estimate was made with and what it found, as one typed value.

:func:`~occupy_relion.core.measure` fills :class:`EstimateSettings`; :func:`~occupy_relion.core.normalise`
sets the reference it divided by.  Every consumer (run.out, occupancy.star, the report, the ChimeraX
script) reads these fields by name; their human labels live in :mod:`occupy_relion.labels`.

The sources are enums whose values are the words written to run.out and occupancy.star.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

#: the estimate's modes (scale.MODES lists them for the command line)
Mode = Literal["occupancy", "resolution"]


class ParameterError(ValueError):
    """A parameter out of its range; ``name`` is the parameter (the job names the option after it)."""

    def __init__(self, name: str, message: str):
        super().__init__(message)
        self.name = name


class SolventRegion(Enum):
    """Where the solvent histogram was taken."""

    WHOLE_BOX = "whole box"
    OUTSIDE_FLATTENED = "box outside the flattened solvent"
    MASK_REGION = "mask region"  # one side of the mask is too small: the larger side is used
    INSIDE_MASK = "inside the solvent mask"
    OUTSIDE_MASK = "outside the molecular mask"

    @property
    def label(self) -> str:
        """The words for run.out, occupancy.star and the report."""
        return str(self.value)


class NoiseFloorSource(Enum):
    """What the noise floor (the local maximum of pure solvent) was measured on."""

    NOISE_MAP = "noise map"  # a pure-noise map (half of the half-map difference), filtered like the map
    SOLVENT_VOXELS = "solvent voxels"  # the map's own solvent far from the molecule, its local level
    SIMULATED = "simulated noise"  # too little solvent: noise of the solvent's spectrum at its sd

    @property
    def label(self) -> str:
        """The words for run.out, occupancy.star and the report."""
        return str(self.value)


class Measurability(Enum):
    """Whether a map's scale means anything; the values are the words for run.out and occupancy.star.

    A map that is not measurable (pure noise, nothing standing out of it) still gets its maps, but its
    numbers read "not measured" (−1) and it never takes part in the region analysis or a joint reference,
    so a Scheme cannot choose it.
    """

    MEASURABLE = "measurable"
    NO_MOLECULE = "not measurable: no molecule"  # too little density reaches confidence 0.5

    @property
    def measurable(self) -> bool:
        """Whether the map's numbers mean anything."""
        return self is Measurability.MEASURABLE

    @property
    def label(self) -> str:
        """The words for run.out, occupancy.star and the report."""
        return str(self.value)


@dataclass(frozen=True)
class EstimateSettings:
    """Derived settings and findings of one estimate (lengths in Å, densities in map units)."""

    mode: Mode
    lowpass_angstrom: float
    kernel_radius_angstrom: float
    kernel_voxels: int
    tau: float  # the published method's reference quantile for this kernel
    reference_quantile: float  # the quantile of a tile that is its value
    tile_angstrom: float
    working_pixel_angstrom: float
    working_shape: tuple[int, int, int]
    solvent_mean: float  # of the low-passed map
    solvent_sd: float  # of the low-passed map
    solvent_fraction: float
    solvent_region: SolventRegion
    noise_floor: float  # median over the box of the local floor (what the local maximum reads in noise)
    noise_floor_source: NoiseFloorSource
    reference_value: float  # the full-occupancy reference the scale is divided by
    reference_position_angstrom: tuple[float, float, float]  # x, y, z of the map's own reference tile
    reference_is_joint: bool = False  # the reference is the joint one of several classes
    no_data_fraction: float = 0.0  # share of the working grid without data (flattened, masked out)
    measurability: Measurability = Measurability.MEASURABLE
    warnings: tuple[str, ...] = ()  # plain-language warnings about the map
    noise_floor_spread: tuple[float, float] = (1.0, 1.0)  # 5th and 95th percentile of the local floor / median
    noise_floor_reason: str = ""  # which noise estimate was used and why, for run.out
    noise_bias_decay: float = 0.27  # k of E[max] = a + f·exp(−k·a/f)
    noise_bias_fitted: bool = False  # k was fitted on the map's own density and noise

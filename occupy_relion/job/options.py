"""What the command line asked for, parsed and typed, and the core's parameters made from it.

Defaults are the core's (:class:`~occupy_relion.core.ScaleParameters`,
:class:`~occupy_relion.core.ModifyParameters`), and so are the range checks: the job builds those
classes once and names the option when one of them refuses a value.
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import cast

from ..core import Mode, ModifyParameters, ParameterError, ScaleParameters
from ..errors import InputError
from ..regions import MaskParameters, RegionParameters


def program_version() -> str:
    """The installed version of occupy_relion ("unknown" when it is not installed)."""
    try:
        return version("occupy_relion")
    except PackageNotFoundError:
        return "unknown"


def option_error(error: ParameterError) -> InputError:
    """The core's refusal of a value, as one line naming the option (``--name: why``)."""
    return InputError(f"--{error.name}: {error}")


def command_line(argv: list[str]) -> str:
    """The command as a shell would show it (for run.out and the report)."""
    return " ".join(shlex.quote(a) for a in ["occupy_relion", *argv])


@dataclass(frozen=True)
class JobOptions:
    """What the command line asked for (already parsed and typed)."""

    output_dir: str
    in_parts: str | None = None
    in_3dref: str | None = None
    in_mask: str | None = None
    model: str | None = None
    mode: str = ScaleParameters.mode  # checked by ScaleParameters
    lowpass: float | None = ScaleParameters.lowpass
    amplify: float = ModifyParameters.amplify
    attenuate: float | None = ModifyParameters.attenuate
    sigmoid: float | None = ModifyParameters.sigmoid
    pivot: float = ModifyParameters.pivot
    scale_limit: float = ModifyParameters.scale_limit
    max_gain: float = ModifyParameters.max_gain
    exclude_solvent: bool = ModifyParameters.exclude_solvent
    joint: bool = False
    mask_extend: float | None = MaskParameters.extend  # Å; None: the default for the pixel size
    mask_soft_edge: float | None = MaskParameters.soft_edge
    region_difference: float = RegionParameters.min_difference
    threads: int = 1
    relion_version: str | None = None
    ignored: tuple[str, ...] = field(default=())  # unknown options (named in a warning)
    command_line: str = ""

    def __post_init__(self) -> None:
        """The one option the core's parameter classes do not hold."""
        if self.threads < 1:
            raise InputError(f"--j: at least 1 thread, not {self.threads}")
        self.mask_parameters()  # the region options: refused before any work
        self.region_parameters()

    def scale_parameters(self) -> ScaleParameters:
        """The estimate's parameters; InputError naming the option for a value out of range."""
        try:
            return ScaleParameters(mode=cast(Mode, self.mode), lowpass=self.lowpass)
        except ParameterError as error:
            raise option_error(error) from None

    def modify_parameters(self) -> ModifyParameters:
        """The modifications asked for; InputError naming the option for a value out of range."""
        try:
            return ModifyParameters(amplify=self.amplify, attenuate=self.attenuate, sigmoid=self.sigmoid,
                                    pivot=self.pivot, scale_limit=self.scale_limit, max_gain=self.max_gain,
                                    exclude_solvent=self.exclude_solvent)
        except ParameterError as error:
            raise option_error(error) from None

    def mask_parameters(self) -> MaskParameters:
        """How the region masks are made soft; InputError naming the option for a bad value."""
        for name in ("mask_extend", "mask_soft_edge"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(f"--{name}: must be a number of Å ≥ 0, not {value:g}")
        return MaskParameters(extend=self.mask_extend, soft_edge=self.mask_soft_edge)

    def region_parameters(self) -> RegionParameters:
        """The region analysis's settings; InputError naming the option for a bad value."""
        if not 0 < self.region_difference < 1:
            raise InputError(f"--region_difference: must be between 0 and 1, not {self.region_difference:g}")
        return RegionParameters(min_difference=self.region_difference)

    def parameters(self) -> dict[str, object]:
        """The user-facing parameters by name (occupancy.star writes them as ``_occupy<Name>``)."""
        return {
            "mode": self.mode, "lowpass": self.lowpass, "amplify": self.amplify, "attenuate": self.attenuate,
            "sigmoid": self.sigmoid, "pivot": self.pivot, "scale_limit": self.scale_limit,
            "max_gain": self.max_gain,
            "exclude_solvent": self.exclude_solvent, "joint": self.joint, "threads": self.threads,
            "mask": self.in_mask, "mask_extend": self.mask_extend, "mask_soft_edge": self.mask_soft_edge,
            "region_difference": self.region_difference,
        }

"""How much memory a run needs, said before it starts and again, naming the map, if it runs out.

The estimate counts the full-size float32 arrays alive at a class's peak: the map, two half maps and
their noise map when there are halves, the scale and confidence maps, each modified map, and the
core's temporaries (two); the working grid is small beside them.  It is an estimate ("about"), said in
run.out.  The address-space limit (``ulimit -v``) is a hard limit: when it leaves less than the
least a run needs, the run is refused before it reads a map, naming the map and the amounts.  That
least is five full-size arrays: measured from the memory check to the job's end (two classes, all
outputs and the report), the address space grew by 11 arrays at 256³ and 6.8 at 384³, the resident
memory by 5.3 and 4.8.  When only the machine's free memory (or the cgroup's room, which counts
reclaimable page cache) is below the estimate, a warning says so and the run goes on.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from ..core import ModifyParameters
from ..errors import InputError
from ..text import size_text

_FLOAT32 = 4
#: full-size arrays besides the modified maps: map, half 1, half 2 / noise, scale, confidence, 2 temporaries
_BASE_ARRAYS = 7
#: full-size arrays of address space a run needs at the least (measured: see the module docstring)
_LEAST_ARRAYS = 5


@dataclass(frozen=True)
class MemoryEstimate:
    """What a run needs and what the machine (or its limits) offers, in bytes."""

    shape: tuple[int, int, int]
    map_path: str  # the first class map (all maps share its box)
    needed: int
    available: int | None  # None when it cannot be known
    limit_room: int | None = None  # room left under the address-space limit (ulimit -v); None: no limit

    @property
    def least(self) -> int:
        """The address space the run needs at the least (below ``needed``: a refusal is certain)."""
        return self.shape[0] * self.shape[1] * self.shape[2] * _FLOAT32 * _LEAST_ARRAYS

    @property
    def short(self) -> bool:
        """True when less is available than needed."""
        return self.available is not None and self.available < self.needed

    @property
    def refused(self) -> bool:
        """True when the address-space limit leaves less than the least the run needs (it would fail)."""
        return self.limit_room is not None and self.limit_room < self.least


def memory_needed(shape: tuple[int, int, int], modify: ModifyParameters, map_path: str) -> MemoryEstimate:
    """The estimate for maps of ``shape`` (file order) with the modified maps ``modify`` asks for."""
    voxels = int(shape[0]) * int(shape[1]) * int(shape[2])
    modified = 1 + (modify.attenuate is not None) + (modify.sigmoid is not None)
    return MemoryEstimate(tuple(int(n) for n in shape), map_path,  # type: ignore[arg-type]
                          voxels * _FLOAT32 * (_BASE_ARRAYS + modified), available_memory(), address_space_room())


def check_fits(estimate: MemoryEstimate) -> None:
    """InputError naming the map and both amounts when the address-space limit leaves too little."""
    if estimate.refused:
        raise InputError(f"{estimate.map_path}: the {size_text(estimate.shape)} maps need about "
                         f"{gigabytes(estimate.needed)} (at least {gigabytes(estimate.least)}), but the "
                         f"address-space limit (ulimit -v) leaves only {gigabytes(estimate.limit_room or 0)}; "
                         "nothing was started (raise the limit, or run the job where there is more memory)")


def gigabytes(count: int) -> str:
    """Bytes as '1.2 GB' (or MB below a gigabyte)."""
    return f"{count / 1e9:.1f} GB" if count >= 1e9 else f"{count / 1e6:.0f} MB"


def _cgroup_room() -> int | None:
    """Memory left under this process's cgroup limit (v2, then v1), or None."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            return max(int(limit) - usage, 0)
    return None


def available_memory() -> int | None:
    """The least of: MemAvailable, the cgroup's room, the address-space limit (``ulimit -v``); None if unknown."""
    room: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                room.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    cgroup = _cgroup_room()
    if cgroup is not None:
        room.append(cgroup)
    limited = address_space_room()
    if limited is not None:
        room.append(limited)
    return min(room) if room else None


def address_space_room() -> int | None:
    """What the address-space limit (``ulimit -v``, RLIMIT_AS) leaves this process; None without a limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return max(soft - _address_space_used(), 0)


def _address_space_used() -> int:
    """This process's virtual size (what RLIMIT_AS counts), 0 when unknown."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def memory_line(estimate: MemoryEstimate) -> str:
    """run.out's line about memory."""
    available = "" if estimate.available is None else f" ({gigabytes(estimate.available)} available)"
    return f" memory: about {gigabytes(estimate.needed)} for {size_text(estimate.shape)} maps{available}"


def short_warning(estimate: MemoryEstimate) -> str:
    """The warning when less is available than the estimate."""
    return (f"{estimate.map_path}: the {size_text(estimate.shape)} maps need about {gigabytes(estimate.needed)}, "
            f"only {gigabytes(estimate.available or 0)} is available; the job may run out of memory")


def out_of_memory_line(estimate: MemoryEstimate | None) -> str:
    """The error line for a MemoryError (names the map and the amount when the estimate was made)."""
    if estimate is None:
        return "out of memory while reading the inputs"
    available = "" if estimate.available is None else f", {gigabytes(estimate.available)} was available"
    return (f"{estimate.map_path}: out of memory: the {size_text(estimate.shape)} maps need about "
            f"{gigabytes(estimate.needed)}{available} (free memory, or run the job where there is more)")

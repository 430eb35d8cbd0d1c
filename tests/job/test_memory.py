"""The memory estimate: what it counts, when it refuses a run (ulimit -v) and what the lines name."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from occupy_relion.core import ModifyParameters
from occupy_relion.errors import InputError
from occupy_relion.job.memory import (
    MemoryEstimate,
    available_memory,
    check_fits,
    memory_needed,
    out_of_memory_line,
    short_warning,
)

MAP = "Class3D/job003/run_it010_class001.mrc"


def test_the_estimate_counts_the_full_size_arrays():
    """7 arrays besides the modified maps; one more per extra modified map."""
    voxels = 10 * 20 * 30
    assert memory_needed((10, 20, 30), ModifyParameters(), MAP).needed == voxels * 4 * 8
    both = ModifyParameters(attenuate=2.0, sigmoid=3.0)
    assert memory_needed((10, 20, 30), both, MAP).needed == voxels * 4 * 10


def test_short_and_refused():
    """Short: less free memory than the estimate (a warning); refused: the address-space limit leaves
    less than the least a run needs."""
    plenty = MemoryEstimate((400, 400, 400), MAP, 2_048_000_000, available=10**10, limit_room=None)
    assert not plenty.short and not plenty.refused
    check_fits(plenty)
    tight = MemoryEstimate((400, 400, 400), MAP, 2_048_000_000, available=10**9, limit_room=None)
    assert tight.short and not tight.refused
    check_fits(tight)  # free memory is not a hard limit: the run goes on (with a warning)
    assert MAP in short_warning(tight) and "2.0 GB" in short_warning(tight)
    between = MemoryEstimate((400, 400, 400), MAP, 2_048_000_000, available=1_500_000_000,
                             limit_room=1_500_000_000)
    assert between.least == 400**3 * 4 * 5 and between.short and not between.refused  # may fit: not refused
    check_fits(between)
    limited = MemoryEstimate((400, 400, 400), MAP, 2_048_000_000, available=474_000_000, limit_room=474_000_000)
    assert limited.refused
    with pytest.raises(InputError) as error:
        check_fits(limited)
    line = str(error.value)
    assert line.startswith(f"{MAP}: the 400x400x400 maps need about 2.0 GB (at least 1.3 GB)")
    assert "ulimit -v" in line and "474 MB" in line and "\n" not in line


def test_out_of_memory_names_the_map_and_the_amount():
    estimate = MemoryEstimate((64, 64, 64), MAP, 8_388_608, available=5_000_000)
    line = out_of_memory_line(estimate)
    assert line.startswith(f"{MAP}: out of memory") and "8 MB" in line and "5 MB was available" in line
    assert "reading the inputs" in out_of_memory_line(None)


_ROOM = "from occupy_relion.job.memory import address_space_room, available_memory; " \
        "print(address_space_room(), available_memory())"


def _limited(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def test_the_address_space_limit_is_read():
    """Under ulimit -v (3 GB here) the room is below the limit, and the available memory no more than it."""
    limit = 3 * 1024**3
    done = subprocess.run([sys.executable, "-c", _ROOM], capture_output=True, text=True, check=True,
                          preexec_fn=lambda: _limited(limit))
    room, available = (int(word) for word in done.stdout.split())
    assert 0 < room < limit and available <= room


def test_no_address_space_limit_is_no_room_limit():
    if resource.getrlimit(resource.RLIMIT_AS)[0] != resource.RLIM_INFINITY:
        pytest.skip("this test process runs under an address-space limit")
    estimate = memory_needed((8, 8, 8), ModifyParameters(), MAP)
    assert estimate.limit_room is None and not estimate.refused
    assert available_memory() is None or available_memory() > 0

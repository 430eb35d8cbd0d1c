"""occupy_relion: local scale (relative occupancy) of every class of a RELION 3D classification."""

import os

# numpy asks the kernel for transparent huge pages on large arrays.  Where the kernel compacts memory
# to serve that request (THP defrag "madvise", common on VMs), first touching a new 512³ map costs
# 2 s instead of 0.3 s.  This only takes effect when numpy has not been imported yet, i.e. for our
# own command line; a program that imports numpy first keeps its own setting.
os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")

__version__ = "0.1.0"

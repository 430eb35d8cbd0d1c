"""occupy_relion: local scale (relative occupancy) of every class of a RELION 3D classification."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("occupy_relion")
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "unknown"

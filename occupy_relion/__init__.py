"""occupy_relion: local scale (relative occupancy) of every class of a RELION 3D classification."""


def __getattr__(name: str) -> str:
    """``__version__``, looked up in the installed metadata only when asked for (start-up stays short)."""
    if name != "__version__":
        raise AttributeError(f"module 'occupy_relion' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("occupy_relion")
    except PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"

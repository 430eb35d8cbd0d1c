"""Read and write MRC maps, keeping the input's geometry (voxel size, origin, start, axis order).

Maps are float32 arrays in file order (sections, rows, columns), exactly as stored, so an output
written with the input's :class:`MapHeader` lines up with the input in every viewer.  Every
problem with a file becomes an :class:`~occupy_relion.errors.InputError` naming the file.
Writes are atomic: a temporary file in the same directory, then ``os.replace``.

Reading is defensive: the 1024-byte header is checked against the file's size by :func:`_precheck`
before mrcfile sees the file (a header claiming a 2 GB extended header or more data than the file
holds fails at once, naming the file, with nothing allocated), complex maps are refused, and
mrcfile's own warnings (e.g. trailing bytes) become one :class:`MapWarning` naming the file, which
the job writes as one WARNING line.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import mrcfile
import numpy as np

from .atomic import atomic_path
from .errors import InputError, check_input_file, first_line

#: largest relative difference between voxel sizes still taken as equal
VOXEL_TOLERANCE = 1e-3


class MapWarning(UserWarning):
    """Something odd but readable about a map file (the message names the file)."""


@dataclass(frozen=True)
class MapHeader:
    """The geometry of a map file: everything an output needs to line up with it."""

    shape: tuple[int, int, int]  # file order: sections, rows, columns
    voxel_size: tuple[float, float, float]  # Å along x, y, z (0 when the header has none)
    origin: tuple[float, float, float]  # Å, x, y, z
    start: tuple[int, int, int]  # nxstart, nystart, nzstart
    axis_order: tuple[int, int, int]  # mapc, mapr, maps (1, 2, 3 = x fastest)
    sampling: tuple[int, int, int]  # mx, my, mz
    cell: tuple[float, float, float]  # cella x, y, z, Å

    @classmethod
    def simple(cls, shape: tuple[int, int, int], voxel_size: float,
               origin: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> MapHeader:
        """A plain header: x fastest, no start offset (for maps made from scratch)."""
        nz, ny, nx = (int(n) for n in shape)
        v = float(voxel_size)
        x, y, z = (float(o) for o in origin)
        return cls((nz, ny, nx), (v, v, v), (x, y, z), (0, 0, 0), (1, 2, 3),
                   (nx, ny, nz), (nx * v, ny * v, nz * v))

    @property
    def isotropic(self) -> bool:
        """True when the three voxel sizes agree."""
        sizes = self.voxel_size
        return max(sizes) - min(sizes) <= VOXEL_TOLERANCE * max(max(sizes), 1e-12)

    @property
    def pixel_size(self) -> float:
        """The voxel size in Å (the mean of the three; 0 when the header has none)."""
        return float(np.mean(self.voxel_size))

    def with_voxel_size(self, voxel_size: float) -> MapHeader:
        """The same geometry with this voxel size (for a map whose header had none)."""
        v = float(voxel_size)
        mx, my, mz = (s if s > 0 else n for s, n in zip(self.sampling, self.shape[::-1]))
        return replace(self, voxel_size=(v, v, v), sampling=(mx, my, mz), cell=(mx * v, my * v, mz * v))


def _header_of(mrc, path: Path) -> MapHeader:
    h = mrc.header
    shape = (int(h.nz), int(h.ny), int(h.nx))
    voxel = mrc.voxel_size
    return MapHeader(
        shape=shape,
        voxel_size=(float(voxel.x), float(voxel.y), float(voxel.z)),
        origin=(float(h.origin.x), float(h.origin.y), float(h.origin.z)),
        start=(int(h.nxstart), int(h.nystart), int(h.nzstart)),
        axis_order=(int(h.mapc), int(h.mapr), int(h.maps)),
        sampling=(int(h.mx), int(h.my), int(h.mz)),
        cell=(float(h.cella.x), float(h.cella.y), float(h.cella.z)),
    )


_MODE_BYTES = {0: 1, 1: 2, 2: 4, 6: 2, 12: 2}
#: modes that are not real-valued density
_COMPLEX_MODES = {3: "complex int16", 4: "complex float32"}
_HEADER_BYTES = 1024


def _precheck(path: Path) -> None:
    """InputError naming ``path`` unless its header describes a real 3D map that fits in the file.

    Runs before mrcfile opens the file, which would allocate whatever the header claims (an extended
    header of 2 GB in a 0.4 MB file) before finding it missing.
    """
    check_input_file(path, "a map")
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_BYTES)
    except PermissionError:
        raise InputError(f"{path}: cannot read (permission denied)") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read ({error.strerror or error})") from None
    size = path.stat().st_size
    if len(head) < _HEADER_BYTES:
        raise InputError(f"{path}: not a readable MRC map ({size} bytes, shorter than an MRC header)")
    candidates = []
    for order in ("<", ">"):
        nx, ny, nz, mode = (int(v) for v in np.frombuffer(head[:16], dtype=f"{order}i4"))
        nsymbt = int(np.frombuffer(head[92:96], dtype=f"{order}i4")[0])
        if all(0 < n < 1 << 20 for n in (nx, ny, nz)) and (mode in _MODE_BYTES or mode in _COMPLEX_MODES):
            candidates.append((nx, ny, nz, mode, nsymbt))
    if not candidates:
        if head[208:212] == b"MAP ":  # an MRC header with a mode or size this reader cannot take
            nx, ny, nz, mode = (int(v) for v in np.frombuffer(head[:16], dtype="<i4"))
            raise InputError(f"{path}: unsupported MRC map (mode {mode}, size {nx} x {ny} x {nz})")
        raise InputError(f"{path}: not a readable MRC map (its header does not describe a map)")
    nx, ny, nz, mode, nsymbt = candidates[0]
    if mode in _COMPLEX_MODES:
        raise InputError(f"{path}: a {_COMPLEX_MODES[mode]} map (mode {mode}, e.g. a Fourier transform); "
                         "occupy_relion needs a real-space density map")
    if nsymbt < 0 or _HEADER_BYTES + nsymbt > size:
        raise InputError(f"{path}: the header claims an extended header of {nsymbt} bytes, "
                         f"but the file has only {size} bytes (corrupt header)")
    needed = _HEADER_BYTES + nsymbt + nx * ny * nz * _MODE_BYTES[mode]
    if needed > size:
        raise InputError(f"{path}: truncated ({size} bytes; a {nx} x {ny} x {nz} map of mode {mode} "
                         f"needs {needed})")


def _mrcfile_open(path: Path, **kwargs):
    """mrcfile.open with its warnings turned into one MapWarning naming the file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mrc = mrcfile.open(path, mode="r", **kwargs)
    for warning in caught:
        warnings.warn(f"{path}: {first_line(Exception(str(warning.message)))}", MapWarning, stacklevel=3)
    return mrc


def _plausible_header(path: Path) -> bool:
    """True when the first words read as an MRC header whose data fit in the file (either byte order).

    Checked before a permissive open, which on arbitrary bytes can try to read absurd sizes.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError:
        return False
    if len(head) < 1024:
        return False
    size = path.stat().st_size
    for order in ("<", ">"):
        nx, ny, nz, mode = np.frombuffer(head[:16], dtype=f"{order}i4")
        nsymbt = int(np.frombuffer(head[92:96], dtype=f"{order}i4")[0])
        if mode in _MODE_BYTES and all(0 < int(n) < 1 << 16 for n in (nx, ny, nz)) and 0 <= nsymbt < size:
            if 1024 + nsymbt + int(nx) * int(ny) * int(nz) * _MODE_BYTES[int(mode)] <= size:
                return True
    return False


def _mapped(path: Path):
    """The file memory-mapped by mrcfile (strict), or None when it holds anything but the header, its
    extended header and the data (then :func:`_mrcfile_open` reads it, with its warnings).

    A mapped map is converted to float32 straight from the page cache: one full-size array, where
    reading first makes mrcfile's own copy of the whole file and then ours.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            mrc = mrcfile.mmap(path, mode="r")
        except (ValueError, EOFError, OSError):
            return None
    data = mrc.data
    exact = (not caught and data is not None
             and mrc.header.nbytes + int(mrc.header.nsymbt) + data.nbytes == path.stat().st_size)
    if not exact:
        mrc.close()
        return None
    return mrc


def _open(path: Path, header_only: bool, mapped: bool = False):
    """Open an MRC file read-only, strictly first, then permissively (some writers bend the format).

    ``mapped``: memory-map it when it is a plain, well-formed map (:func:`_mapped`)."""
    _precheck(path)
    if mapped and not header_only:
        mrc = _mapped(path)
        if mrc is not None:
            return mrc
    try:
        return _mrcfile_open(path, header_only=header_only)
    except PermissionError:
        raise InputError(f"{path}: cannot read (permission denied)") from None
    except (ValueError, EOFError, OSError) as strict_error:
        reason = first_line(strict_error)
        if not _plausible_header(path):
            raise InputError(f"{path}: not a readable MRC map ({reason})") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mrc = mrcfile.open(path, mode="r", permissive=True, header_only=header_only)
        except Exception:
            raise InputError(f"{path}: not a readable MRC map ({reason})") from None
        if not header_only and mrc.data is None:
            mrc.close()
            raise InputError(f"{path}: not a readable MRC map ({reason})") from None
        return mrc


def _check_geometry(path: Path, header: MapHeader) -> None:
    if any(n < 2 for n in header.shape):
        raise InputError(f"{path}: not a 3D map (size {header.shape[2]} x {header.shape[1]} x {header.shape[0]})")
    if sorted(header.axis_order) != [1, 2, 3]:
        raise InputError(f"{path}: invalid axis order mapc/mapr/maps = {header.axis_order}")
    if not all(math.isfinite(v) and v >= 0 for v in header.voxel_size):
        raise InputError(f"{path}: invalid voxel size {header.voxel_size} in the header")
    if path.suffix.lower() == ".mrcs":
        raise InputError(f"{path}: a stack of 2D images (.mrcs), not a 3D map")


def read_header(path: str | os.PathLike) -> MapHeader:
    """The geometry of a map without reading its data (cheap consistency checks)."""
    path = Path(path)
    mrc = _open(path, header_only=True)
    try:
        header = _header_of(mrc, path)
    finally:
        mrc.close()
    _check_geometry(path, header)
    return header


def read_map(path: str | os.PathLike) -> tuple[np.ndarray, MapHeader]:
    """A map as float32 in file order, and its header.  Rejects non-3D and non-finite maps."""
    path = Path(path)
    mrc = _open(path, header_only=False, mapped=True)
    try:
        header = _header_of(mrc, path)
        _check_geometry(path, header)
        data = mrc.data
        if data is None or data.ndim != 3:
            raise InputError(f"{path}: not a 3D map")
        try:
            volume = np.array(data, dtype=np.float32)
        except (ValueError, TypeError) as error:
            raise InputError(f"{path}: unreadable data ({error})") from None
    finally:
        mrc.close()
    if volume.shape != header.shape:
        raise InputError(f"{path}: data size {volume.shape} does not match the header {header.shape}")
    if not np.isfinite(volume).all():
        bad = int(np.count_nonzero(~np.isfinite(volume)))
        raise InputError(f"{path}: {bad} voxels are NaN or infinite")
    return volume, header


#: about how many voxels :func:`sample_sd` reads
_SAMPLE_VOXELS = 200_000


def sample_sd(path: str | os.PathLike) -> float:
    """The sd of a map from a sparse regular sample (memory-mapped: cheap even for a huge map); NaN
    when the file cannot be sampled (reading it properly then says why)."""
    path = Path(path)
    _precheck(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
                data = mrc.data
                if data is None or data.ndim != 3:
                    return math.nan
                step = max(1, round((data.size / _SAMPLE_VOXELS) ** (1 / 3)))
                sample = np.asarray(data[::step, ::step, ::step], dtype=np.float64)
                return float(np.std(sample)) if np.isfinite(sample).all() else math.nan
    except (ValueError, OSError, EOFError):
        return math.nan


#: planes per slab when copying a map into its file and taking its statistics
_WRITE_SLAB = 16


def _header_statistics(volume: np.ndarray) -> tuple[float, float, float, float]:
    """min, max, mean and rms deviation of ``volume`` for the header: float32 reductions per slab,
    accumulated in float64, so no full-size temporary is made."""
    low, high = float(volume.min()), float(volume.max())
    # squares of values beyond ~1e19 overflow float32: then per plane in float64 (a plane's copy at most)
    wide = max(abs(low), abs(high)) > 1e15
    total = squares = 0.0
    for start in range(0, volume.shape[0], 1 if wide else _WRITE_SLAB):
        flat = volume[start:start + (1 if wide else _WRITE_SLAB)].reshape(-1)
        total += float(flat.sum(dtype=np.float64))
        if wide:
            flat = flat.astype(np.float64)
        squares += float(np.dot(flat, flat))
    mean = total / volume.size
    return low, high, mean, math.sqrt(max(squares / volume.size - mean * mean, 0.0))


def _close_abandoned_files(error: BaseException) -> None:
    """Close the file mrcfile leaves open when its memory map fails (a full disk): its object lives on
    in the error's frames and a reference cycle, so the deleted temporary file would keep its space."""
    import gc
    import traceback

    with warnings.catch_warnings():  # closing it is the point: no warning that it was left open
        warnings.simplefilter("ignore", ResourceWarning)
        traceback.clear_frames(error.__traceback__)
        gc.collect()


def write_map(path: str | os.PathLike, volume: np.ndarray, header: MapHeader, label: str = "occupy_relion") -> Path:
    """Write ``volume`` (file order) as float32 with the geometry of ``header``, atomically.

    mrcfile writes the header (and checks it); the data follow with plain writes, slab by slab, so the
    map is never copied in memory: at 512³ that is 512 MB less peak memory than mrcfile's ``set_data``
    (which keeps its own copy of the array); it is not measurably faster.
    """
    path = Path(path)
    volume = np.ascontiguousarray(volume, dtype=np.float32)
    if volume.shape != tuple(header.shape):
        raise ValueError(f"{path}: volume shape {volume.shape} differs from the header shape {header.shape}")
    statistics = _header_statistics(volume)
    with atomic_path(path, ".mrc") as temp:
        try:
            mrc = mrcfile.new_mmap(temp, shape=volume.shape, mrc_mode=2, overwrite=True)
        except OSError as error:
            _close_abandoned_files(error)
            raise
        with mrc:
            h = mrc.header
            h.mapc, h.mapr, h.maps = header.axis_order
            h.mx, h.my, h.mz = header.sampling
            h.cella = header.cell
            h.origin = header.origin
            h.nxstart, h.nystart, h.nzstart = header.start
            h.label[0] = label[:80].encode("ascii", "replace")
            h.nlabl = 1
            h.dmin, h.dmax, h.dmean, h.rms = statistics
            data_offset = mrc.header.nbytes + int(h.nsymbt)
            file_order = mrc.data.dtype
        if file_order != volume.dtype:  # the header declares the byte order the data must have
            volume = volume.astype(file_order)
        with open(temp, "r+b") as handle:
            handle.seek(data_offset)
            for start in range(0, volume.shape[0], _WRITE_SLAB):
                handle.write(volume[start:start + _WRITE_SLAB].data.cast("B"))
    return path

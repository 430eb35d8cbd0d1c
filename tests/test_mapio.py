"""Map reading (defensive, errors naming the file) and atomic writing with the input's geometry."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import warnings

import mrcfile
import numpy as np
import pytest

from occupy_relion.errors import InputError
from occupy_relion.mapio import MapHeader, MapWarning, read_header, read_map, write_map

from .conftest import SHARED_MAPS, SHARED_RELION, write_mrc


@pytest.fixture
def volume():
    return np.random.default_rng(0).standard_normal((12, 14, 16)).astype(np.float32)


def test_round_trip_keeps_geometry(tmp_path, volume):
    source = write_mrc(tmp_path / "in.mrc", volume, 1.5, origin=(10.0, -20.0, 30.5), start=(-8, -7, -6))
    data, header = read_map(source)
    assert data.dtype == np.float32 and data.shape == (12, 14, 16)
    np.testing.assert_array_equal(data, volume)
    out = write_map(tmp_path / "out.mrc", data * 2, header)
    again, header_again = read_map(out)
    np.testing.assert_allclose(again, volume * 2)
    assert header_again.voxel_size == pytest.approx((1.5, 1.5, 1.5))
    assert header_again.origin == pytest.approx((10.0, -20.0, 30.5))
    assert header_again.start == (-8, -7, -6)
    assert header_again.axis_order == (1, 2, 3)


def test_permuted_axis_order_is_kept(tmp_path, volume):
    """A map stored with sections along x (mapc/mapr/maps = 3,2,1) stays that way, data in file order."""
    source = tmp_path / "permuted.mrc"
    with mrcfile.new(source) as mrc:
        mrc.set_data(volume)
        mrc.header.mapc, mrc.header.mapr, mrc.header.maps = 3, 2, 1
        mrc.header.mx, mrc.header.my, mrc.header.mz = 12, 14, 16
        mrc.header.cella = (12 * 2.0, 14 * 2.0, 16 * 2.0)
    data, header = read_map(source)
    assert header.axis_order == (3, 2, 1)
    assert header.pixel_size == pytest.approx(2.0)
    np.testing.assert_array_equal(data, volume)
    write_map(tmp_path / "out.mrc", data, header)
    with mrcfile.open(tmp_path / "out.mrc") as mrc:
        assert (int(mrc.header.mapc), int(mrc.header.mapr), int(mrc.header.maps)) == (3, 2, 1)
        assert (int(mrc.header.mx), int(mrc.header.my), int(mrc.header.mz)) == (12, 14, 16)
        assert float(mrc.voxel_size.x) == pytest.approx(2.0)
        np.testing.assert_array_equal(mrc.data, volume)


def test_integer_maps_are_read_as_float32(tmp_path):
    mask = np.zeros((10, 10, 10), np.int8)
    mask[3:7, 3:7, 3:7] = 1
    path = tmp_path / "mask.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(mask)
        mrc.voxel_size = 1.0
    data, _ = read_map(path)
    assert data.dtype == np.float32 and data.sum() == 64


def test_real_relion_and_emdb_maps(tmp_path):
    relion_map = SHARED_RELION / "relion31_project/Class3D/job003/run_it010_class001.mrc"
    emdb_map = SHARED_MAPS / "emd_1703.map"
    if not relion_map.exists() or not emdb_map.exists():
        pytest.skip("shared maps not found")
    data, header = read_map(shutil.copy(relion_map, tmp_path / "class.mrc"))
    assert data.shape == (64, 64, 64) and header.pixel_size == pytest.approx(3.5)
    data, header = read_map(shutil.copy(emdb_map, tmp_path / "emd_1703.map"))
    assert data.shape == (46, 65, 46) and header.pixel_size == pytest.approx(6.0)  # non-cubic


def test_read_header_does_not_need_the_data(tmp_path, volume):
    path = write_mrc(tmp_path / "a.mrc", volume, 3.0)
    header = read_header(path)
    assert header.shape == (12, 14, 16) and header.isotropic and header.pixel_size == pytest.approx(3.0)


@pytest.mark.parametrize("case, message", [
    ("missing", "file not found"),
    ("empty", "empty file"),
    ("text", "not a readable MRC map"),
    ("directory", "is a directory"),
    ("image2d", "not a 3D map"),
    ("nan", "NaN or infinite"),
    ("stack", "stack of 2D images"),
    ("truncated", "truncated (1124 bytes"),
    ("complex", "a complex float32 map (mode 4"),
    ("huge extended header", "extended header of 2000000000 bytes"),
])
def test_bad_maps_name_the_file(tmp_path, case, message):
    path = tmp_path / f"bad_{case}.mrc"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not a map\n" * 100)
    elif case == "directory":
        path.mkdir()
    elif case == "image2d":
        write_mrc(path, np.ones((1, 8, 8), np.float32))
    elif case == "nan":
        data = np.ones((8, 8, 8), np.float32)
        data[2, 3, 4] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile warns when it writes NaN
            write_mrc(path, data)
    elif case == "stack":
        path = tmp_path / "classes.mrcs"
        write_mrc(path, np.ones((4, 8, 8), np.float32))
    elif case == "truncated":
        write_mrc(path, np.ones((16, 16, 16), np.float32))
        with open(path, "r+b") as handle:
            handle.truncate(1024 + 100)
    elif case == "complex":
        with mrcfile.new(path) as mrc:
            mrc.set_data(np.ones((8, 8, 8), np.complex64))
    elif case == "huge extended header":
        _claim_extended_header(write_mrc(path, np.ones((8, 8, 8), np.float32)), 2_000_000_000)
    with pytest.raises(InputError) as error:
        read_map(path)
    text = str(error.value)
    assert str(path) in text and message in text
    assert "\n" not in text


def test_write_is_atomic_when_interrupted(tmp_path, volume, monkeypatch):
    """A failure while writing leaves the previous file intact and no temporary file behind."""
    target = write_mrc(tmp_path / "out.mrc", volume, 1.0)
    before = target.read_bytes()
    header = MapHeader.simple(volume.shape, 1.0)

    real_new_mmap = mrcfile.new_mmap

    def disk_full(name, *args, **kwargs):  # the temporary file exists, then the disk fills up
        real_new_mmap(name, *args, **kwargs).close()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mrcfile, "new_mmap", disk_full)
    with pytest.raises(OSError):
        write_map(target, volume * 3, header)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mrc"]


def test_written_files_follow_the_umask(tmp_path, volume):
    old = os.umask(0o022)
    try:
        path = write_map(tmp_path / "out.mrc", volume, MapHeader.simple(volume.shape, 1.0))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_shape_mismatch_is_refused(tmp_path, volume):
    with pytest.raises(ValueError):
        write_map(tmp_path / "x.mrc", volume, MapHeader.simple((4, 4, 4), 1.0))
    assert not list(tmp_path.iterdir())


def test_input_is_not_modified(tmp_path, volume):
    """The array read is the job's own (not a view of the file), and reading leaves the file as it was."""
    path = write_mrc(tmp_path / "in.mrc", volume, 1.0)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    data, _ = read_map(path)
    assert type(data) is np.ndarray and data.flags.writeable and data.flags.owndata
    data += 5  # the job works in place on what it read
    del data
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_map_without_map_id_is_still_read(tmp_path, volume):
    """Some old writers leave out the 'MAP ' word: the data are read all the same."""
    path = write_mrc(tmp_path / "old.mrc", volume, 1.0)
    with open(path, "r+b") as handle:
        handle.seek(208)
        handle.write(b"\0\0\0\0")
    data, header = read_map(path)
    np.testing.assert_array_equal(data, volume)
    assert header.pixel_size == pytest.approx(1.0)


def _claim_extended_header(path, nsymbt: int):
    """Write ``nsymbt`` into the header's extended-header size (word 24), leaving the file as it is."""
    with open(path, "r+b") as handle:
        handle.seek(92)
        handle.write(np.int32(nsymbt).tobytes())
    return path


_READ_AND_MEASURE = """
import resource, sys
from occupy_relion.errors import InputError
from occupy_relion.mapio import read_map
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    read_map(sys.argv[1])
except InputError as error:
    print(error)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_huge_extended_header_is_refused_before_anything_is_allocated(tmp_path):
    """A 0.4 MB map whose header claims a 2 GB extended header: refused naming the file, and the peak
    resident memory of the reading process grows by less than 50 MB (mrcfile alone allocates 2 GB).
    The process runs under a 1 GB address-space limit, so a regression fails without taking 2 GB."""
    path = _claim_extended_header(write_mrc(tmp_path / "huge_header.mrc", np.ones((46, 46, 46), np.float32)),
                                  2_000_000_000)
    assert 0.3e6 < path.stat().st_size < 0.5e6

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, resource.RLIM_INFINITY))

    done = subprocess.run([sys.executable, "-c", _READ_AND_MEASURE, str(path)], capture_output=True, text=True,
                          preexec_fn=limit, check=False)
    assert done.returncode == 0, done.stderr
    message, grown_kb = done.stdout.splitlines()
    assert message.startswith(f"{path}: the header claims an extended header of 2000000000 bytes")
    assert int(grown_kb) < 50_000


def test_trailing_bytes_are_one_warning_naming_the_file(tmp_path, volume):
    path = write_mrc(tmp_path / "trailing.mrc", volume, 1.0)
    with open(path, "ab") as handle:
        handle.write(b"\0" * 4096)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data, _ = read_map(path)
    assert [w.category for w in caught] == [MapWarning]
    text = str(caught[0].message)
    assert text.startswith(f"{path}: ") and "4096 bytes larger" in text and "\n" not in text
    np.testing.assert_array_equal(data, volume)


def _open_files_in(directory) -> list[str]:
    """The files under ``directory`` this process holds open (deleted ones too)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KB tmpfs filled to the last page (root only; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=65536", "tmpfs", str(disk)], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        with open(disk / "filler", "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
        yield disk
    finally:
        if subprocess.run(["umount", str(disk)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)  # busy: detach it all the same


def test_a_map_that_cannot_be_written_leaves_no_open_file(full_disk, volume):
    """On a full disk mrcfile's memory map fails and leaves its file open (in a reference cycle):
    write_map closes it at once, so the deleted temporary file gives its space back."""
    with pytest.raises(OSError) as error:
        write_map(full_disk / "out.mrc", volume, MapHeader.simple(volume.shape, 1.0))
    assert error.value.filename == str(full_disk / "out.mrc")
    assert _open_files_in(full_disk) == []
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]

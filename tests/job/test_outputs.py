"""Writing the maps in the background (job/outputs.py MapWriter, class_map_writer): every map written
as it was handed over, a write's error raised where the driver waits, no write outliving the block."""

from __future__ import annotations

import errno
import threading
import time

import mrcfile
import numpy as np
import pytest

from occupy_relion.job import outputs
from occupy_relion.job.outputs import JobDirectory, MapWriter, class_map_writer
from occupy_relion.mapio import MapHeader
from occupy_relion.result import ClassOutputs

NAMES = ClassOutputs(scale="External/job012/class001_scale.mrc", confidence="External/job012/class001_confidence.mrc",
                     equalised="External/job012/class001_equalised.mrc")


@pytest.fixture
def job(tmp_path, monkeypatch) -> JobDirectory:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "External" / "job012").mkdir(parents=True)
    return JobDirectory.of("External/job012/")


def _maps() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {kind: rng.standard_normal((12, 10, 8)).astype(np.float32) for kind in ("scale", "confidence", "equalised")}


def test_every_map_handed_over_is_written_with_the_input_geometry(job):
    maps = _maps()
    header = MapHeader.simple((12, 10, 8), 0.0)  # no voxel size in the input: the run's is written
    with MapWriter() as writer:
        ready = class_map_writer(writer, job, NAMES, header, "Class3D/job008/run_it025_class001.mrc", 2.5)
        for kind, array in maps.items():
            ready(kind, array)
        writer.wait()
    for kind, array in maps.items():
        with mrcfile.open(job.output_path(f"class001_{kind}.mrc")) as mrc:
            np.testing.assert_array_equal(mrc.data, array)
            assert float(mrc.voxel_size.x) == pytest.approx(2.5)
            assert mrc.header.label[0].decode().startswith(f"occupy_relion {kind} of Class3D/job008/")


def test_a_failed_write_is_raised_where_the_driver_waits(job, monkeypatch):
    real = outputs.write_map

    def full_disk(path, volume, header, label):
        if "confidence" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, volume, header, label)

    monkeypatch.setattr(outputs, "write_map", full_disk)
    maps = _maps()
    with MapWriter() as writer:
        ready = class_map_writer(writer, job, NAMES, MapHeader.simple((12, 10, 8), 1.0), "c.mrc", 1.0)
        for kind, array in maps.items():
            ready(kind, array)
        with pytest.raises(OSError) as raised:
            writer.wait()
        writer.wait()  # an error is raised once: what was handed over before it has been waited for
    assert raised.value.errno == errno.ENOSPC and "confidence" in raised.value.filename


def test_no_write_outlives_the_block_when_the_class_fails_meanwhile(job, monkeypatch):
    """An abort (or any error) while a map is still being written: the block is left only after it."""
    real = outputs.write_map
    finished = []

    def slow(path, volume, header, label):
        time.sleep(0.3)
        finished.append(str(path))
        return real(path, volume, header, label)

    monkeypatch.setattr(outputs, "write_map", slow)
    with pytest.raises(RuntimeError, match="aborted"):
        with MapWriter() as writer:
            class_map_writer(writer, job, NAMES, MapHeader.simple((12, 10, 8), 1.0), "c.mrc", 1.0)(
                "scale", _maps()["scale"])
            raise RuntimeError("aborted")
    assert len(finished) == 1
    assert not [t for t in threading.enumerate() if t.name.startswith("occupy-write")]

"""A small project with three processed classes (synthetic maps, fixed seeds) and their results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from occupy_relion.relion.version import RelionVersion
from occupy_relion.result import ClassResult, RunDescription
from occupy_relion.synthetic import noisy_map

from ..conftest import process_class, write_mrc

BOX = 48
PIXEL = 1.5
OCCUPANCIES = ((1.0, 1.0, 1.0), (1.0, 0.5, 0.25), (1.0, 1.0, 0.0))
DISTRIBUTIONS = (0.5, 0.3, 0.2)
JOB = "External/job012"


@pytest.fixture(scope="session")
def processed():
    """Three classes at 48³ through the job's pipeline: all domains full, partial domains, one domain missing.

    (input map, ProcessedClass) per class.
    """
    out = []
    for number, occupancy in enumerate(OCCUPANCIES, start=1):
        volume, _particle = noisy_map((BOX,) * 3, PIXEL, 0.5, occupancy, seed=10 + number)
        out.append((volume, process_class(volume, PIXEL, number, job=JOB + "/", distribution=DISTRIBUTIONS[number - 1],
                                          resolution=6.0 + number, seconds=0.5 * number)))
    return out


@pytest.fixture(scope="session")
def results(processed) -> list[ClassResult]:
    return [p.result for _volume, p in processed]


@pytest.fixture(scope="session")
def _project_template(tmp_path_factory, processed) -> Path:
    root = tmp_path_factory.mktemp("project_template")
    for volume, p in processed:
        write_mrc(root / p.result.input_path, volume, PIXEL)
        outputs = p.result.outputs
        for kind, path in (("scale", outputs.scale), ("confidence", outputs.confidence),
                           ("equalised", outputs.equalised)):
            write_mrc(root / path, p.maps[kind], PIXEL)
    return root


@pytest.fixture
def project(tmp_path, _project_template) -> Path:
    """A fresh copy of the project (every test may delete or add files)."""
    root = tmp_path / "project"
    shutil.copytree(_project_template, root)
    return root


@pytest.fixture
def job() -> str:
    """The job directory, relative to the project."""
    return JOB


def run_description(joint: bool = False, reference: float | None = None) -> RunDescription:
    """What the job would tell the report about a run."""
    return RunDescription(
        input="Class3D/job008/run_it025_data.star", input_kind="Class3D",
        model_path="Class3D/job008/run_it025_model.star",
        relion_version=RelionVersion("3.1", "default_pipeline.star"), job_dir=JOB + "/",
        command_line=f"occupy_relion --o {JOB}/ --in_parts Class3D/job008/run_it025_data.star --j 1",
        pixel_size=PIXEL, parameters=(("mode", "occupancy"), ("amplify", float("inf")), ("threads", 1)),
        joint=joint, joint_reference=reference,
    )


@pytest.fixture
def run() -> RunDescription:
    return run_description()



"""A small project with three processed classes (synthetic maps, fixed seeds) and their summaries."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from occupy_relion.core import ModifyParameters, ScaleParameters, measure, modify_map, normalise, scale_statistics
from occupy_relion.report import ClassSummary, summarise_class
from occupy_relion.synthetic import noisy_map

BOX = 48
PIXEL = 1.5
OCCUPANCIES = ((1.0, 1.0, 1.0), (1.0, 0.5, 0.25), (1.0, 1.0, 0.0))
DISTRIBUTIONS = (0.5, 0.3, 0.2)
JOB = "External/job012"


@dataclass
class Processed:
    """What the job has after processing one class: its maps and the estimate."""

    number: int
    volume: np.ndarray
    estimate: object
    equalised: np.ndarray
    statistics: dict


def _write(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as handle:
        handle.set_data(np.asarray(data, np.float32))
        handle.voxel_size = PIXEL


@pytest.fixture(scope="session")
def processed() -> list[Processed]:
    """Three classes at 48³: all domains full, partial domains, one domain missing."""
    out = []
    for number, occupancy in enumerate(OCCUPANCIES, start=1):
        volume, _particle = noisy_map((BOX,) * 3, PIXEL, 0.5, occupancy, seed=10 + number)
        estimate = normalise(measure(volume, PIXEL, ScaleParameters()))
        equalised = modify_map(volume, estimate, PIXEL, ModifyParameters())["equalised"]
        out.append(Processed(number, volume, estimate, equalised, scale_statistics(estimate.scale, estimate.confidence)))
    return out


def class_paths(number: int) -> dict[str, str]:
    """Project-relative paths of one class, as the job names them."""
    return {
        "input_path": f"Class3D/job008/run_it025_class{number:03d}.mrc",
        "scale_path": f"{JOB}/class{number:03d}_scale.mrc",
        "confidence_path": f"{JOB}/class{number:03d}_confidence.mrc",
        "equalised_path": f"{JOB}/class{number:03d}_equalised.mrc",
    }


@pytest.fixture(scope="session")
def summaries(processed) -> list[ClassSummary]:
    return [
        summarise_class(p.number, p.volume, p.estimate, p.equalised, p.statistics, **class_paths(p.number),
                        distribution=DISTRIBUTIONS[p.number - 1], resolution=6.0 + p.number, pixel_size=PIXEL,
                        seconds=0.5 * p.number)
        for p in processed
    ]


@pytest.fixture(scope="session")
def _project_template(tmp_path_factory, processed) -> Path:
    root = tmp_path_factory.mktemp("project_template")
    for p in processed:
        paths = class_paths(p.number)
        _write(root / paths["input_path"], p.volume)
        _write(root / paths["scale_path"], p.estimate.scale)
        _write(root / paths["confidence_path"], p.estimate.confidence)
        _write(root / paths["equalised_path"], p.equalised)
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


@pytest.fixture
def paths_of():
    """class number -> its project-relative paths."""
    return class_paths


@pytest.fixture
def run_info() -> dict:
    return {
        "input": "Class3D/job008/run_it025_data.star",
        "RELION version": "3.1 (default_pipeline.star)",
        "command line": f"occupy_relion --o {JOB}/ --in_parts Class3D/job008/run_it025_data.star --j 1",
        "parameters": {"mode": "occupancy", "amplify γ": float("inf"), "threads": 1},
    }

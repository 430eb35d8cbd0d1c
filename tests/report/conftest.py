"""A small project with three processed classes (synthetic maps, fixed seeds) and their results."""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from occupy_relion.regions import analyse_regions, occupancy_map, region_mask
from occupy_relion.regions.occupancy import part_labels
from occupy_relion.relion.version import RelionVersion
from occupy_relion.report.summary import regions_view
from occupy_relion.result import ClassResult, RegionsResult, RunDescription
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




# ---------------------------------------------------------------------------------------------
# the example project's three classes on one joint reference, with their region analysis


EXAMPLE = Path(__file__).resolve().parents[2] / "example_project"
EXAMPLE_JOB = "External/job004"


def _example_generator():
    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class RegionsProject:
    """A project with its classes, their region analysis and the files the job writes for it."""

    root: Path  # a fresh copy per test
    job: str
    results: list[ClassResult]
    regions: RegionsResult
    volumes: dict[int, np.ndarray]  # the input maps
    pixel_size: float
    truth: tuple[tuple[float, ...], ...]  # per class, per domain
    domains: tuple[tuple[tuple[float, float, float], float], ...]  # centre (Å from the box centre), radius

    def domain_of(self, points_zyx: np.ndarray, margin: float) -> np.ndarray:
        """Per point (z, y, x Å from voxel 0): the domain (1-based) whose ball surface is nearest, 0 if
        it is more than ``margin`` Å outside every ball."""
        centre = (np.asarray(next(iter(self.volumes.values())).shape) // 2) * self.pixel_size
        xyz = points_zyx[:, ::-1] - centre[::-1]
        outside = np.stack([np.linalg.norm(xyz - np.asarray(c), axis=1) - r for c, r in self.domains])
        nearest = np.argmin(outside, axis=0) + 1
        return np.where(outside.min(axis=0) <= margin, nearest, 0)


def _joint_classes(volumes: list[np.ndarray], pixel_size: float, job: str, inputs: list[str]):
    """Every class through the job's pipeline with one joint reference: results, estimates, full maps."""
    from occupy_relion.core import ModifyParameters, ScaleParameters, joint_reference
    from occupy_relion.job.classes import ClassWork, finish_class, measure_class, normalise_class
    from occupy_relion.job.outputs import JobDirectory, class_outputs
    from occupy_relion.relion.inputs import ClassInput

    work = ClassWork(pixel_size, ScaleParameters(), ModifyParameters(), None, 1, lambda: None)
    classes = [ClassInput(n, path, round(1 / len(inputs), 4), 9.0) for n, path in enumerate(inputs, start=1)]
    measured = [measure_class(c, v, None, work) for c, v in zip(classes, volumes)]
    reference = joint_reference(measured)
    estimates = [normalise_class(c, m, reference, 1) for c, m in zip(classes, measured)]
    processed = [finish_class(c, v, e, work, class_outputs(JobDirectory.of(job + "/"), c.number, work.modify))
                 for c, v, e in zip(classes, volumes, estimates)]
    return processed, estimates, reference


@pytest.fixture(scope="session")
def _example_template(tmp_path_factory):
    """The example project's maps through the job (joint), its regions analysed and every file written."""
    generator = _example_generator()
    inputs = [f"Class3D/job003/run_it025_class00{n}.mrc" for n in (1, 2, 3)]
    if not all((EXAMPLE / p).is_file() for p in inputs):
        pytest.skip("example project maps not found")
    volumes = [mrcfile.read(EXAMPLE / p).astype(np.float32) for p in inputs]
    pixel = generator.PIXEL_SIZE
    processed, estimates, reference = _joint_classes(volumes, pixel, EXAMPLE_JOB, inputs)
    root = tmp_path_factory.mktemp("example_regions")
    for path, volume in zip(inputs, volumes):
        write_mrc(root / path, volume, pixel)
    for p in processed:
        outputs = p.result.outputs
        for kind, path in (("scale", outputs.scale), ("confidence", outputs.confidence),
                           ("equalised", outputs.equalised)):
            write_mrc(root / path, p.maps[kind], pixel)
    scale = {p.result.number: e.scale_grid for p, e in zip(processed, estimates)}
    confidence = {p.result.number: e.confidence_grid for p, e in zip(processed, estimates)}
    grid = next(iter(scale.values())).shape
    spacing = volumes[0].shape[0] * pixel / grid[0]
    analysis = analyse_regions(scale, confidence, spacing, processed[0].result.settings.lowpass_angstrom)
    regions = _write_region_files(root, EXAMPLE_JOB, analysis, volumes[0].shape, pixel, scale)
    truth = tuple((1.0, 1.0, 1.0, occupancy) for _name, occupancy in generator.VARIANTS)
    domains = tuple((tuple(float(c) for c in centre), float(radius)) for centre, radius in generator.DOMAINS)
    return root, [p.result for p in processed], regions, dict(zip((1, 2, 3), volumes)), pixel, truth, domains


def _write_region_files(root: Path, job: str, analysis, shape, pixel: float, scale) -> RegionsResult:
    """What the job writes of an analysis: region masks, the variable mask and the occupancy maps (on
    the analysis grid, its own voxel size), as a RegionsResult with its view."""
    masks = []
    for region in analysis.regions:
        path = f"{job}/region{region.number:03d}_mask.mrc"
        write_mrc(root / path, region_mask(analysis, [region.number], shape, pixel), pixel)
        masks.append(path)
    variable = None
    if analysis.regions:
        variable = f"{job}/variable_mask.mrc"
        write_mrc(root / variable, region_mask(analysis, None, shape, pixel), pixel)
    parts = part_labels(analysis)
    maps = []
    for number in analysis.classes:
        path = f"{job}/class{number:03d}_occupancy.mrc"
        write_mrc(root / path, occupancy_map(analysis, number, parts), float(analysis.spacing[0]))
        maps.append((number, path))
    return RegionsResult(analysis=analysis, region_masks=tuple(masks), variable_mask=variable,
                         occupancy_maps=tuple(maps), view=regions_view(analysis, scale))


@pytest.fixture
def example_regions(tmp_path, _example_template) -> RegionsProject:
    """A fresh copy of the example project with its regions (every test may change its files)."""
    template, results, regions, volumes, pixel, truth, domains = _example_template
    root = tmp_path / "example"
    shutil.copytree(template, root)
    return RegionsProject(root, EXAMPLE_JOB, results, regions, volumes, pixel, truth, domains)


# ---------------------------------------------------------------------------------------------
# a synthetic project: four domains on a ring; domain 4 complete / absent / at half, fixed seeds

SYNTHETIC_SHAPE = (72, 72, 72)
SYNTHETIC_PIXEL = 1.5
SYNTHETIC_OCCUPANCY = ((1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 0.0), (1.0, 1.0, 1.0, 0.5))
SYNTHETIC_NOISE = 0.25  # relative to the full density's sd (tests/regions' moderate noise)


@pytest.fixture(scope="session")
def _synthetic_template(tmp_path_factory):
    from occupy_relion import synthetic

    full = synthetic.make_particle((1.0,) * 4, seed=3)
    labels = synthetic.domain_masks(full, SYNTHETIC_SHAPE, SYNTHETIC_PIXEL)
    signal_sd = float(synthetic.render(full, SYNTHETIC_SHAPE, SYNTHETIC_PIXEL, occupancy=False)[labels > 0].std())
    volumes = []
    for k, values in enumerate(SYNTHETIC_OCCUPANCY):
        volume = synthetic.render(synthetic.make_particle(values, seed=3), SYNTHETIC_SHAPE, SYNTHETIC_PIXEL)
        volume += synthetic.correlated_noise(SYNTHETIC_SHAPE, SYNTHETIC_PIXEL, SYNTHETIC_NOISE * signal_sd,
                                             seed=40 + k)
        volumes.append(volume.astype(np.float32))
    inputs = [f"Class3D/job008/run_it025_class00{n}.mrc" for n in (1, 2, 3)]
    processed, estimates, _reference = _joint_classes(volumes, SYNTHETIC_PIXEL, JOB, inputs)
    root = tmp_path_factory.mktemp("synthetic_regions")
    for path, volume in zip(inputs, volumes):
        write_mrc(root / path, volume, SYNTHETIC_PIXEL)
    for p in processed:
        write_mrc(root / p.result.outputs.scale, p.maps["scale"], SYNTHETIC_PIXEL)
    scale = {p.result.number: e.scale_grid for p, e in zip(processed, estimates)}
    confidence = {p.result.number: e.confidence_grid for p, e in zip(processed, estimates)}
    spacing = SYNTHETIC_SHAPE[0] * SYNTHETIC_PIXEL / next(iter(scale.values())).shape[0]
    analysis = analyse_regions(scale, confidence, spacing, processed[0].result.settings.lowpass_angstrom)
    regions = _write_region_files(root, JOB, analysis, SYNTHETIC_SHAPE, SYNTHETIC_PIXEL, scale)
    domains = tuple((tuple(float(c) for c in centre), float(full.radius)) for centre in full.centres)
    return (root, [p.result for p in processed], regions, dict(zip((1, 2, 3), volumes)), SYNTHETIC_PIXEL,
            SYNTHETIC_OCCUPANCY, domains)


@pytest.fixture
def synthetic_regions(tmp_path, _synthetic_template) -> RegionsProject:
    """A fresh copy of the synthetic project with its regions."""
    template, results, regions, volumes, pixel, truth, domains = _synthetic_template
    root = tmp_path / "synthetic"
    shutil.copytree(template, root)
    return RegionsProject(root, JOB, results, regions, volumes, pixel, truth, domains)

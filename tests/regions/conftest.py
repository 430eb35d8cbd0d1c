"""Synthetic projects with known per-domain occupancy, and the example project, through the current core
with one joint reference.  Made once per session with fixed seeds."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from occupy_relion import synthetic
from occupy_relion.core import joint_reference, measure, normalise

SHAPE = (80, 80, 80)
PIXEL_SIZE = 1.5  # Å: a 120 Å box; the low-pass is 8 Å and the working grid 2 Å (60³)
#: four domains on a ring (neighbours touch); per class: complete, lacking domain 4, domain 3 at half,
#: domain 4 at half
CLASS_OCCUPANCY = ((1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 0.0), (1.0, 1.0, 0.5, 1.0), (1.0, 1.0, 1.0, 0.5))
#: one map alone: domain 2 at half, domain 4 at a quarter
SINGLE_OCCUPANCY = ((1.0, 0.5, 1.0, 0.25),)
#: two classes of a classification that mixes the states: domain 4 at half in both (partial in every
#: class), domain 2 present in one and absent in the other
MIXED_OCCUPANCY = ((1.0, 1.0, 1.0, 0.5), (1.0, 0.0, 1.0, 0.5))
#: noise relative to the full density's sd: moderate (as tests/core) and 2.5× that
MODERATE_NOISE = 0.25
NOISY = 0.625
#: one map alone sees partial density only as far as the core's confidence does: 1.6× moderate
SINGLE_NOISY = 0.4

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE_CLASS3D = REPOSITORY / "example_project" / "Class3D" / "job003"


@dataclass(frozen=True)
class Project:
    """Class maps through the core (joint reference) with the truth on the analysis grids."""

    occupancy: tuple[tuple[float, ...], ...]  # per class, per domain
    scale: dict[int, np.ndarray]  # working grid
    confidence: dict[int, np.ndarray]
    spacing: float  # Å per voxel of the working grid
    lowpass: float
    shape: tuple[int, int, int]  # full-size map
    pixel_size: float
    particle: synthetic.Particle | None
    domains: tuple[tuple[tuple[float, float, float], float], ...]  # centre (Å from the box centre), radius
    noise: float | None = None  # relative to the full density's sd (None: a real map)

    def domain_labels(self, shape, spacing, shrink: float = 0.0) -> np.ndarray:
        """k + 1 inside domain k (its ball shrunk by ``shrink`` Å; negative: grown), 0 elsewhere, on a
        grid of ``spacing`` Å covering the box.  Where grown balls overlap, the nearer surface wins."""
        centre_A = (np.asarray(self.shape) // 2) * self.pixel_size  # where the particle's centre was rendered
        z, y, x = (np.indices(shape, dtype=np.float32) * np.float32(spacing)
                   - centre_A[:, None, None, None].astype(np.float32))
        labels = np.zeros(shape, dtype=np.int16)
        nearest = np.full(shape, np.inf, dtype=np.float32)
        for k, (centre, radius) in enumerate(self.domains):
            outside = np.sqrt((x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2) - radius
            take = (outside <= -shrink) & (outside < nearest)
            labels[take] = k + 1
            nearest = np.minimum(nearest, outside)
        return labels

    def variable_domains(self) -> list[int]:
        """Domains (1-based) whose occupancy differs between classes or is below full in every class."""
        per_domain = list(zip(*self.occupancy))
        return [k + 1 for k, values in enumerate(per_domain) if len(set(values)) > 1 or max(values) < 1]


def _through_core(volumes: list[np.ndarray], pixel_size: float, joint: bool):
    measured = [measure(v, pixel_size, threads=2) for v in volumes]
    reference = joint_reference(measured) if joint else None
    estimates = [normalise(m, reference, threads=2) for m in measured]
    grid = estimates[0].scale_grid.shape
    spacing = volumes[0].shape[0] * pixel_size / grid[0]
    scale = {k + 1: e.scale_grid for k, e in enumerate(estimates)}
    confidence = {k + 1: e.confidence_grid for k, e in enumerate(estimates)}
    return scale, confidence, spacing, measured[0].settings.lowpass_angstrom


def class_volumes(occupancy, noise: float, seed: int = 0) -> tuple[list[np.ndarray], synthetic.Particle]:
    """The class maps of a synthetic project (full size) and its particle with every domain full:
    every class the same atoms (same seed), its own occupancies and its own noise."""
    full = synthetic.make_particle((1.0,) * len(occupancy[0]), seed=seed)
    labels = synthetic.domain_masks(full, SHAPE, PIXEL_SIZE)
    signal_sd = float(synthetic.render(full, SHAPE, PIXEL_SIZE, occupancy=False)[labels > 0].std())
    volumes = []
    for k, values in enumerate(occupancy):
        particle = synthetic.make_particle(values, seed=seed)
        volume = synthetic.render(particle, SHAPE, PIXEL_SIZE)
        volume += synthetic.correlated_noise(SHAPE, PIXEL_SIZE, noise * signal_sd, seed=100 * seed + 10 + k)
        volumes.append(volume)
    return volumes, full


def make_project(occupancy, noise: float, seed: int = 0) -> Project:
    """Every class the same atoms (same seed), its own occupancies and its own noise."""
    volumes, full = class_volumes(occupancy, noise, seed)
    scale, confidence, spacing, lowpass = _through_core(volumes, PIXEL_SIZE, joint=len(volumes) > 1)
    domains = tuple((tuple(float(c) for c in centre), full.radius) for centre in full.centres)
    return Project(tuple(occupancy), scale, confidence, spacing, lowpass, SHAPE, PIXEL_SIZE, full, domains, noise)  # type: ignore[arg-type]


@pytest.fixture(scope="session", params=[(MODERATE_NOISE, 0), (MODERATE_NOISE, 1), (NOISY, 0), (NOISY, 1)],
                ids=lambda p: f"noise{p[0]}-seed{p[1]}")
def classes_project(request) -> Project:
    """Four classes: complete, lacking a domain, one domain at half, another at half."""
    noise, seed = request.param
    return make_project(CLASS_OCCUPANCY, noise, seed)


@pytest.fixture(scope="session", params=[(MODERATE_NOISE, 0), (MODERATE_NOISE, 1)],
                ids=lambda p: f"noise{p[0]}-seed{p[1]}")
def single_map(request) -> Project:
    """One map alone with a half and a quarter domain."""
    noise, seed = request.param
    return make_project(SINGLE_OCCUPANCY, noise, seed)


@pytest.fixture(scope="session")
def noisy_single_map() -> Project:
    return make_project(SINGLE_OCCUPANCY, SINGLE_NOISY, 0)


def _example_generator():
    spec = importlib.util.spec_from_file_location("make_example", REPOSITORY / "example_project" / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example_project() -> Project:
    """The committed example project's three class maps (present / absent / half of domain 4)."""
    generator = _example_generator()
    paths = [EXAMPLE_CLASS3D / f"run_it025_class00{n}.mrc" for n in (1, 2, 3)]
    if not all(p.is_file() for p in paths):
        pytest.skip("example project maps not found")
    volumes = [mrcfile.read(p).astype(np.float32) for p in paths]
    scale, confidence, spacing, lowpass = _through_core(volumes, generator.PIXEL_SIZE, joint=True)
    truth = tuple((1.0, 1.0, 1.0, occupancy) for _, occupancy in generator.VARIANTS)
    domains = tuple((tuple(float(c) for c in centre), float(radius)) for centre, radius in generator.DOMAINS)
    return Project(truth, scale, confidence, spacing, lowpass, volumes[0].shape, generator.PIXEL_SIZE, None, domains)  # type: ignore[arg-type]

"""Synthetic maps with known occupancy, made once per session with fixed seeds."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from occupy_relion import synthetic

from ..conftest import SHARED_MAPS, SHARED_RELION, _require

#: noise (relative to the molecule's density sd) at which the published tool reads 0.49–0.50 and 0.26
MODERATE_NOISE = 0.25
OCCUPANCY = (1.0, 0.5, 0.25)


def _make(noise: float, seed: int, occupancy=OCCUPANCY, shape=(128, 128, 128), pixel_size=1.0):
    volume, particle = synthetic.noisy_map(shape, pixel_size, noise, occupancy, seed)
    labels = synthetic.domain_masks(particle, shape, pixel_size)
    return volume, particle, labels


@pytest.fixture(scope="session", params=[0, 1, 2], ids=lambda s: f"seed{s}")
def moderate_map(request):
    return _make(MODERATE_NOISE, request.param)


@pytest.fixture(scope="session", params=[0, 1, 2], ids=lambda s: f"seed{s}")
def noisy_map(request):
    return _make(2.5 * MODERATE_NOISE, request.param)


@pytest.fixture(scope="session")
def full_map():
    """Every domain fully occupied."""
    return _make(MODERATE_NOISE, 0, occupancy=(1.0, 1.0, 1.0))


@pytest.fixture(scope="session")
def small_map():
    """A small, non-cubic, odd-sized map for quick behaviour tests."""
    volume, particle = synthetic.noisy_map((61, 70, 66), 1.5, MODERATE_NOISE, OCCUPANCY, 7)
    return volume


def domain_medians(scale: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([np.median(scale[labels == k]) for k in range(1, labels.max() + 1)])


# --- real-map cases (issue 9): masked, flattened, padded, cropped versions of the shared maps ---------

def _shared_map(path):
    """A shared map as float32 (z, y, x) and its pixel size; the test is skipped when it is absent."""
    with mrcfile.open(_require(path), permissive=True) as mrc:
        return np.asarray(mrc.data, dtype=np.float32).copy(), float(mrc.voxel_size.x)


def _radius(shape, axes=(0, 1, 2)) -> np.ndarray:
    """Distance (voxels) from the box centre, over ``axes`` only (a cylinder when one is left out)."""
    grids = np.indices(shape, dtype=np.float32)
    return np.sqrt(sum((grids[a] - (shape[a] - 1) / 2) ** 2 for a in axes))


def soft_edge(distance: np.ndarray, start: float, width: float) -> np.ndarray:
    """1 up to ``start``, a raised-cosine fall-off to 0 over ``width`` (RELION's soft mask edge)."""
    t = np.clip((distance - start) / width, 0, 1)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


@pytest.fixture(scope="session")
def emd5168():
    """EMD-5168 (F-actin, 100³ at 1.742 Å, unmasked, real solvent noise; the filament runs along z)."""
    return _shared_map(SHARED_MAPS / "emd_5168.map")


@pytest.fixture(scope="session")
def emd1703():
    """EMD-1703 (a desmosome sub-tomogram average deposited with the protein dark, 46 × 65 × 46 at 6 Å)."""
    return _shared_map(SHARED_MAPS / "emd_1703.map")


@pytest.fixture(scope="session", params=["sphere", "cylinder", "gaussian", "padded"])
def masked_5168(request, emd5168):
    """EMD-5168 with its solvent masked away, and the masked region: where the mask keeps at most a
    quarter of the map (the cylinder holds the whole filament, so there only noise is masked), or at most
    5 % where the sphere cuts the filament (a filament at 5-25 % is attenuated density, not no data).

    sphere: a soft sphere (radius 36 voxels, 8-voxel cosine edge), exact zeros outside; cylinder: the
    same about the filament axis; gaussian: a Gaussian fall-off outside radius 30 that never reaches an
    exact constant; padded: the central 70³ in a 100³ box of zeros (no edge at all).
    """
    volume, pixel = emd5168
    if request.param == "sphere":
        mask = soft_edge(_radius(volume.shape), 36, 8)
    elif request.param == "cylinder":
        mask = soft_edge(_radius(volume.shape, axes=(1, 2)), 30, 8)
    elif request.param == "gaussian":
        r = _radius(volume.shape)
        mask = np.exp(-0.5 * (np.maximum(r - 30, 0) / 6) ** 2).astype(np.float32)
    else:
        mask = np.zeros(volume.shape, np.float32)
        mask[15:85, 15:85, 15:85] = 1
    level = 0.05 if request.param in ("sphere", "gaussian") else 0.25
    return request.param, volume * mask, pixel, mask < level


RELION_CLASS3D = {
    "relion50": ("relion50_project", "run_it005"),
    "relion31": ("relion31_project", "run_it010"),
}


@pytest.fixture(scope="session", params=[(v, k) for v in RELION_CLASS3D for k in (1, 2)],
                ids=lambda p: f"{p[0]}-class{p[1]}")
def relion_class(request):
    """A real Class3D map made with --flatten_solvent --zero_mask (exact zeros outside a soft sphere)."""
    version, number = request.param
    project, root = RELION_CLASS3D[version]
    volume, pixel = _shared_map(SHARED_RELION / project / "Class3D" / "job003" / f"{root}_class{number:03d}.mrc")
    return f"{version}-class{number}", volume, pixel

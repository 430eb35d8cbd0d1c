"""Synthetic maps with known occupancy, made once per session with fixed seeds."""

from __future__ import annotations

import numpy as np
import pytest

from occupy_relion import synthetic

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

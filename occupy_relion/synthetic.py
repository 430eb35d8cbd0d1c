"""Synthetic maps with known occupancy, for tests and benchmarks.

A "particle" is a few spherical domains of randomly placed atoms (Gaussian blobs), each domain's
density multiplied by its occupancy, plus correlated Gaussian noise.  Atoms live in Å, so the same
particle can be rendered at any pixel size and box.  Everything is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft

from .core.filters import radial_frequency

#: heavy-atom number density of protein, atoms per Å³ (1.35 g/cm³, ~14 Da per atom with hydrogens)
PROTEIN_ATOM_DENSITY = 0.058


@dataclass(frozen=True)
class Particle:
    """Atom positions (Å, x/y/z, relative to the box centre) and which domain each belongs to."""

    atoms: np.ndarray  # (n, 3)
    domain_of_atom: np.ndarray  # (n,)
    centres: np.ndarray  # (domains, 3) domain centres, Å relative to the box centre
    radius: float  # domain radius, Å
    occupancy: tuple[float, ...]


def make_particle(
    occupancy: tuple[float, ...] = (1.0, 0.5, 0.25),
    radius: float = 14.0,
    spacing: float = 30.0,
    seed: int = 0,
) -> Particle:
    """Domains of ``radius`` Å on a ring (centres ``spacing`` Å apart), filled with random atoms."""
    rng = np.random.default_rng(seed)
    count = len(occupancy)
    ring = spacing / (2 * np.sin(np.pi / count)) if count > 1 else 0.0
    angles = 2 * np.pi * np.arange(count) / count
    centres = np.stack([ring * np.cos(angles), ring * np.sin(angles), np.zeros(count)], axis=1)
    per_domain = int(PROTEIN_ATOM_DENSITY * 4 / 3 * np.pi * radius ** 3)
    atoms, owner = [], []
    for k, centre in enumerate(centres):
        direction = rng.standard_normal((per_domain, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        r = radius * rng.random(per_domain) ** (1 / 3)
        atoms.append(centre + direction * r[:, None])
        owner.append(np.full(per_domain, k))
    return Particle(np.concatenate(atoms), np.concatenate(owner), centres, radius, tuple(occupancy))


def render(
    particle: Particle,
    shape: tuple[int, int, int],
    pixel_size: float,
    blur: float = 1.5,
    occupancy: bool = True,
) -> np.ndarray:
    """Noise-free density of ``particle`` on a grid of ``shape`` (z, y, x), centred in the box.

    Atoms are Gaussians of ``blur`` Å standard deviation; each domain is scaled by its occupancy
    unless ``occupancy`` is False.
    """
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    grid = np.zeros(shape, dtype=np.float32)
    weights = np.ones(len(particle.atoms), dtype=np.float32)
    if occupancy:
        weights = np.asarray(particle.occupancy, dtype=np.float32)[particle.domain_of_atom]
    centre = np.array([shape[2] // 2, shape[1] // 2, shape[0] // 2], dtype=np.float64)
    position = particle.atoms / pixel_size + centre  # voxel coordinates x, y, z
    base = np.floor(position).astype(np.int64)
    frac = position - base
    # trilinear splatting keeps sub-voxel positions, so any pixel size renders the same particle
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                w = (
                    (frac[:, 2] if dz else 1 - frac[:, 2])
                    * (frac[:, 1] if dy else 1 - frac[:, 1])
                    * (frac[:, 0] if dx else 1 - frac[:, 0])
                )
                z, y, x = base[:, 2] + dz, base[:, 1] + dy, base[:, 0] + dx
                np.add.at(grid, (z % shape[0], y % shape[1], x % shape[2]), (w * weights).astype(np.float32))
    spectrum = scipy.fft.rfftn(grid)
    frequency = radial_frequency(shape, np.asarray(shape) * pixel_size)
    spectrum *= np.exp(-2 * (np.pi * blur * frequency) ** 2).astype(np.float32)
    # the splatting's own low-pass (sinc² per axis) is left in: it is far above the blur's cut-off
    return scipy.fft.irfftn(spectrum, s=shape).astype(np.float32) / np.float32(pixel_size ** 3)


def correlated_noise(
    shape: tuple[int, int, int], pixel_size: float, sd: float, correlation: float = 2.0, seed: int = 1
) -> np.ndarray:
    """Gaussian noise of standard deviation ``sd`` with a Gaussian correlation of ``correlation`` Å,
    like the solvent of a reconstruction."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = scipy.fft.rfftn(white)
    frequency = radial_frequency(shape, np.asarray(shape) * pixel_size)
    spectrum *= np.exp(-2 * (np.pi * correlation * frequency) ** 2).astype(np.float32)
    noise = scipy.fft.irfftn(spectrum, s=shape).astype(np.float32)
    noise *= np.float32(sd / noise.std())
    return noise


def domain_masks(particle: Particle, shape: tuple[int, int, int], pixel_size: float, shrink: float = 0.0) -> np.ndarray:
    """Integer label map: k + 1 inside domain k (a ball of radius − ``shrink`` Å), 0 elsewhere."""
    z, y, x = np.indices(shape, dtype=np.float32)
    coords = [(x - shape[2] // 2) * pixel_size, (y - shape[1] // 2) * pixel_size, (z - shape[0] // 2) * pixel_size]
    labels = np.zeros(shape, dtype=np.int16)
    for k, c in enumerate(particle.centres):
        distance2 = (coords[0] - c[0]) ** 2 + (coords[1] - c[1]) ** 2 + (coords[2] - c[2]) ** 2
        inside = distance2 <= (particle.radius - shrink) ** 2
        labels[inside] = k + 1
    return labels


def noisy_map(
    shape: tuple[int, int, int] = (128, 128, 128),
    pixel_size: float = 1.0,
    noise: float = 1.0,
    occupancy: tuple[float, ...] = (1.0, 0.5, 0.25),
    seed: int = 0,
) -> tuple[np.ndarray, Particle]:
    """A particle with domains at ``occupancy`` plus noise of ``noise`` × the molecule's density sd.

    ``noise`` is relative to the standard deviation of the noise-free, full-occupancy density inside
    the domains, so it means the same at every box and pixel size.
    """
    particle = make_particle(occupancy, seed=seed)
    clean = render(particle, shape, pixel_size)
    full = render(particle, shape, pixel_size, occupancy=False)
    labels = domain_masks(particle, shape, pixel_size)
    signal_sd = float(full[labels > 0].std())
    del full, labels  # two full-size maps: freed before the noise is made
    clean += correlated_noise(shape, pixel_size, noise * signal_sd, seed=seed + 1)
    return clean, particle

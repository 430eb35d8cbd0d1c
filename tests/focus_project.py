"""A tiny RELION project whose two states differ only in a small domain, for the occupy_focus tests.

The molecule is four constant domains (radii 14, 13, 13 and 11 Å, on a kinked chain, not in one plane) and
one small variable domain (9 Å, 8 % of the mass), a separate lobe about 8 Å from the nearest constant
domain (a tethered domain whose linker does not show), present in one state and absent in the other.
Each state is projected by ``relion_project`` (of whichever RELION is first on ``PATH``) at seeded random
orientations, seeded white noise is added and the images are normalised to a background of mean 0 and
sd 1.  The image name says the state (``Simulation/present.mrcs``, ``Simulation/absent.mrcs``).  A global
3D classification by the same RELION (added and run with ``relion_pipeliner``) is the input of the
Scheme: it mixes the states (the domain is partial in both global classes), which is what our job's
first run reports as the variable region and what focused classification is for.  ``relion_mask_create``
also makes a soft mask around the variable domain (for the tests that must not depend on our mask).

Why a lobe: a partial domain that touches a fully occupied one is never *edge-free* in our region
analysis (within the edge width, about the low-pass, stronger density is near, so its lower scale
could be an edge), so no region is reported there; 8 Å of solvent between them is enough.

Kept small for CI (2 cores): box 48 at 2.5 Å, 2 × 200 particles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import starfile

from occupy_relion.synthetic import PROTEIN_ATOM_DENSITY, Particle, render

from .pipeliner import random_orientations

BOX = 48
PIXEL_SIZE = 2.5  # Å
PER_STATE = 200
SEED = 11
#: sd of the white noise relative to the sd of the noise-free projections of the "present" state
NOISE_TO_SIGNAL = 0.7

#: (centre in Å from the box centre, radius in Å); the last domain is the variable one
CONSTANT_DOMAINS = (((-30.0, -6.0, -4.0), 14.0), ((-6.0, -10.0, 2.0), 13.0), ((14.0, 2.0, -2.0), 13.0),
                    ((24.0, 20.0, 8.0), 11.0))
#: 29.7 Å from the centre of the second domain (a gap of 7.7 Å between their surfaces), 34.7 Å from the third's
VARIABLE_DOMAIN = ((2.0, -4.0, 30.0), 9.0)
STATES = (("present", 1.0), ("absent", 0.0))

#: the global Class3D of the test (job 001 of a new project)
CLASS3D_JOB = "Class3D/job001/"
FOCUS_MASK = "Masks/focus_mask.mrc"

MINIMAL_PIPELINE = {
    "3.1": "\n# version 30001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter                       1\n \n",
    "5.0": "\n# version 50001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter                       1\n \n",
}


def molecule(variable_occupancy: float, seed: int = SEED) -> Particle:
    """The four domains as random atoms (the same atoms in every state); the last one at ``variable_occupancy``."""
    rng = np.random.default_rng(seed)
    domains = (*CONSTANT_DOMAINS, VARIABLE_DOMAIN)
    atoms, owner = [], []
    for index, (centre, radius) in enumerate(domains):
        count = int(PROTEIN_ATOM_DENSITY * 4 / 3 * np.pi * radius ** 3)
        direction = rng.standard_normal((count, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        distance = radius * rng.random(count) ** (1 / 3)
        atoms.append(np.asarray(centre) + direction * distance[:, None])
        owner.append(np.full(count, index))
    centres = np.array([centre for centre, _ in domains])
    occupancy = (1.0,) * len(CONSTANT_DOMAINS) + (variable_occupancy,)
    return Particle(np.concatenate(atoms), np.concatenate(owner), centres, max(r for _, r in domains), occupancy)


@dataclass(frozen=True)
class Relion:
    """Which RELION runs a command: its environment (``PATH`` first entry) and its version."""

    version: str  # "3.1" or "5.0"
    env: dict

    def run(self, command: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
        done = subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=timeout,
                              check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                                 f"{done.stderr[-3000:]}")
        return done


def relion31() -> Relion | None:
    """Debian's RELION 3.1 from the ordinary PATH, if its programs are there."""
    env = dict(os.environ)
    needed = ("relion_refine", "relion_project", "relion_pipeliner", "relion_scheduler", "relion_mask_create",
              "relion_particle_subtract")
    if any(shutil.which(name, path=env.get("PATH")) is None for name in needed):
        return None
    return Relion("3.1", env)


def relion50(bin_dir: Path) -> Relion | None:
    """RELION 5.0 with ``bin_dir`` first on PATH (only for the commands that get this environment)."""
    needed = ("relion_refine", "relion_project", "relion_pipeliner", "relion_schemer", "relion_mask_create",
              "relion_particle_subtract", "relion_star_handler")
    if not all((bin_dir / name).is_file() for name in needed):
        return None
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    version = subprocess.run(["relion_refine", "--version"], env=env, capture_output=True, text=True, check=False)
    if version.returncode != 0 or "5.0" not in version.stdout + version.stderr:
        return None
    return Relion("5.0", env)


def _write_map(path: Path, volume: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(volume.astype(np.float32))
        mrc.voxel_size = PIXEL_SIZE


OPTICS = pd.DataFrame({"rlnOpticsGroup": [1], "rlnOpticsGroupName": ["optics1"], "rlnVoltage": [300.0],
                       "rlnSphericalAberration": [2.7], "rlnAmplitudeContrast": [0.1],
                       "rlnImagePixelSize": [PIXEL_SIZE], "rlnImageSize": [BOX], "rlnImageDimensionality": [2]})


def simulate(project: Path, relion: Relion, noise_to_signal: float = NOISE_TO_SIGNAL) -> None:
    """Maps, seeded noisy projections, the shuffled particles STAR file, the reference and the focus mask."""
    simulation = project / "Simulation"
    simulation.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    maps = {}
    noise_sd = None
    for name, occupancy in STATES:
        volume = render(molecule(occupancy), (BOX,) * 3, PIXEL_SIZE, blur=2.0)
        maps[name] = volume
        _write_map(simulation / f"{name}.mrc", volume)
        starfile.write({"optics": OPTICS, "particles": random_orientations(rng, PER_STATE)},
                       simulation / f"{name}_angles.star")
        relion.run(["relion_project", "--i", f"Simulation/{name}.mrc", "--o", f"Simulation/{name}",
                    "--ang", f"Simulation/{name}_angles.star", "--angpix", str(PIXEL_SIZE)], project)
        with mrcfile.open(simulation / f"{name}.mrcs", mode="r+") as mrc:
            if noise_sd is None:  # set by the first (complete) state, the same for both
                noise_sd = float(mrc.data.std()) * noise_to_signal
            noise = rng.normal(0.0, noise_sd, mrc.data.shape).astype(np.float32)
            mrc.data[...] = (mrc.data + noise) / np.float32(noise_sd)
    _write_map(simulation / "consensus.mrc", (maps["present"] + maps["absent"]) / 2)
    # only image names: the classification starts from scratch, and the stack name tells the state
    names = [f"{index:06d}@Simulation/{name}.mrcs" for name, _ in STATES for index in range(1, PER_STATE + 1)]
    names = [names[i] for i in rng.permutation(len(names))]
    particles = pd.DataFrame({"rlnImageName": names, "rlnMicrographName": "Simulation/micrograph.mrc",
                              "rlnOpticsGroup": 1})
    starfile.write({"optics": OPTICS, "particles": particles}, simulation / "particles.star")
    # a soft mask around the variable domain, made the way a user would with RELION
    variable_only = render(Particle(*_only_variable(molecule(1.0))), (BOX,) * 3, PIXEL_SIZE, blur=2.0)
    _write_map(simulation / "variable_domain.mrc", variable_only)
    (project / "Masks").mkdir()
    threshold = 0.2 * float(variable_only.max())
    relion.run(["relion_mask_create", "--i", "Simulation/variable_domain.mrc", "--o", FOCUS_MASK,
                "--ini_threshold", f"{threshold:.6g}", "--extend_inimask", "1", "--width_soft_edge", "3",
                "--angpix", str(PIXEL_SIZE)], project)


def _only_variable(particle: Particle) -> tuple:
    keep = particle.domain_of_atom == len(CONSTANT_DOMAINS)
    return (particle.atoms[keep], np.zeros(int(keep.sum()), dtype=int), particle.centres[-1:], particle.radius,
            (1.0,))


#: Class3D options (GUI names) for the global classification, as a user would run it on these particles
CLASS3D_OPTIONS = {
    "fn_img": "Simulation/particles.star", "fn_ref": "Simulation/consensus.mrc", "ref_correct_greyscale": "No",
    "ini_high": "30", "do_ctf_correction": "No", "particle_diameter": "100", "nr_classes": "2", "tau_fudge": "4",
    "nr_iter": "10", "sampling": "15 degrees", "offset_range": "3", "offset_step": "1", "sym_name": "C1",
    "nr_pool": "30", "do_combine_thru_disc": "No", "do_parallel_discio": "Yes", "nr_mpi": "1", "nr_threads": "2",
    "other_args": f"--random_seed {SEED}",
}


def make_project(project: Path, relion: Relion, noise_to_signal: float = NOISE_TO_SIGNAL,
                 class3d_options: dict[str, str] | None = None) -> float:
    """A new RELION project of ``relion``'s version with the particles and a global Class3D (job001).

    Returns the seconds the Class3D took.
    """
    project.mkdir(parents=True, exist_ok=True)
    (project / "default_pipeline.star").write_text(MINIMAL_PIPELINE[relion.version])
    simulate(project, relion, noise_to_signal)
    options = {**CLASS3D_OPTIONS, **(class3d_options or {})}
    if relion.version == "3.1":
        options["skip_gridding"] = "Yes"
    start = time.monotonic()
    relion.run(["relion_pipeliner", "--addJob", "Class3D", "--addJobOptions",
                ";".join(f"{key} == {value}" for key, value in options.items())], project)
    relion.run(["relion_pipeliner", "--RunJobs", CLASS3D_JOB, "--sec_wait_after", "1"], project)
    seconds = time.monotonic() - start
    if not (project / CLASS3D_JOB / "RELION_JOB_EXIT_SUCCESS").exists():
        errors = (project / CLASS3D_JOB / "run.err").read_text() if (project / CLASS3D_JOB / "run.err").exists() else ""
        raise AssertionError(f"the global Class3D did not succeed:\n{errors[-3000:]}")
    return seconds


def last_iteration(job_dir: Path) -> Path:
    """The data.star of the last iteration of a Class3D job."""
    found = sorted(job_dir.glob("run_it*_data.star"))
    if not found:
        raise AssertionError(f"{job_dir}: no run_it*_data.star")
    return found[-1]


def state_of(image_name: str) -> str:
    """The simulated state of a particle, from its image name (original or subtracted)."""
    for name, _ in STATES:
        if f"Simulation/{name}.mrcs" in image_name:
            return name
    raise ValueError(f"{image_name}: not one of the simulated stacks")


@dataclass(frozen=True)
class Separation:
    """How well a classification's classes follow the simulated states."""

    accuracy: float  # fraction of particles in a class whose majority state is their own (purity)
    table: pd.DataFrame  # particles per class (rows) and state (columns)

    @property
    def adjusted_rand(self) -> float:
        """Adjusted Rand index of classes against states (1: the same partition; about 0: chance)."""
        counts = self.table.to_numpy(dtype=np.float64)

        def pairs(values: np.ndarray) -> float:
            return float((values * (values - 1) / 2).sum())

        total = pairs(np.array([counts.sum()]))
        rows, columns = pairs(counts.sum(axis=1)), pairs(counts.sum(axis=0))
        expected = rows * columns / total
        best = (rows + columns) / 2
        return (pairs(counts) - expected) / (best - expected) if best != expected else 1.0

    def purity_of(self, state: str) -> float:
        """Fraction of the particles of the class holding most of ``state`` that are ``state``."""
        best = self.table[state].idxmax()
        return float(self.table.loc[best, state] / self.table.loc[best].sum())


def separation(data_star: Path) -> Separation:
    """Cross-tabulate classes against states (the original image name tells the state)."""
    particles = starfile.read(data_star, always_dict=True)["particles"]
    # subtracted particles name the original image in rlnImageOriginalName; reverted ones in rlnImageName
    column = "rlnImageName"
    if not str(particles[column].iloc[0]).count("@Simulation/") and "rlnImageOriginalName" in particles:
        column = "rlnImageOriginalName"
    states = particles[column].map(state_of)
    table = pd.crosstab(particles["rlnClassNumber"], states)
    for name, _ in STATES:
        if name not in table:
            table[name] = 0
    accuracy = float(table.max(axis=1).sum() / table.to_numpy().sum())
    return Separation(accuracy, table[[name for name, _ in STATES]])


def variable_domain_centre() -> tuple[float, float, float]:
    """The variable domain's centre (x, y, z, Å from the centre of voxel (0, 0, 0)), as our job's
    region centres are given."""
    centre, _ = VARIABLE_DOMAIN
    return tuple(float(c) + (BOX // 2) * PIXEL_SIZE for c in centre)  # type: ignore[return-value]


def region_at_variable_domain(occupancy_star: Path) -> pd.DataFrame | None:
    """The rows of ``occupancy_regions`` (one per class) of the region centred within the variable
    domain's radius of its centre, or None if our job found no such region."""
    blocks = starfile.read(occupancy_star, always_dict=True)
    regions = blocks.get("occupancy_regions")
    if not isinstance(regions, pd.DataFrame) or regions.empty:
        return None
    centre = np.array(variable_domain_centre())
    at = regions[["occupyRegionCentreX", "occupyRegionCentreY", "occupyRegionCentreZ"]].to_numpy(dtype=float)
    near = regions[np.linalg.norm(at - centre, axis=1) <= VARIABLE_DOMAIN[1]]
    if near.empty:
        return None
    return near[near["occupyRegionNumber"] == near["occupyRegionNumber"].iloc[0]]


def mask_at_domains(mask_file: Path, shrink: float = 3.0) -> tuple[float, list[float]]:
    """A mask's least value inside the variable domain (its ball shrunk by ``shrink`` Å) and its mean
    over each constant domain's ball."""
    mask = mrcfile.read(mask_file)
    grid = (np.indices(mask.shape, dtype=np.float32) - BOX // 2) * np.float32(PIXEL_SIZE)  # z, y, x

    def ball(centre, radius):
        return (grid[2] - centre[0]) ** 2 + (grid[1] - centre[1]) ** 2 + (grid[0] - centre[2]) ** 2 <= radius ** 2

    centre, radius = VARIABLE_DOMAIN
    inside = float(mask[ball(centre, radius - shrink)].min())
    return inside, [float(mask[ball(centre, radius)].mean()) for centre, radius in CONSTANT_DOMAINS]

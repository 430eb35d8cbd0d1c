#!/usr/bin/env python3
"""Regenerate the example RELION project in this directory with real RELION 3.1 programs.

What it makes (paths relative to this directory, which is the RELION project directory):

1. ``Simulation/``: three 64³ maps (3.5 Å/px) of one asymmetric particle made of four domains;
   the fourth domain is fully present (``present.mrc``), absent (``absent.mrc``) or at half
   occupancy (``partial.mrc``).  ``relion_project`` projects each map in 400 random orientations,
   white noise is added (projection SNR about 0.7) and the images are normalised to a background sd
   of 1; the three stacks are listed, shuffled, in ``Simulation/particles.star``.  The mean of the
   three maps is the starting reference ``Simulation/consensus.mrc``.
2. ``Import/job001/`` (the particles) and ``Import/job002/`` (the reference), by ``relion_import``.
3. ``Class3D/job003/``: a 3-class 3D classification by ``relion_refine`` (25 iterations, 15°
   sampling, initial low-pass 30 Å) that separates the three maps (about 92 % of the particles in
   the class of their map).

Every job is added and run with ``relion_pipeliner``, so ``default_pipeline.star``, ``job.star`` and
``note.txt`` are exactly what RELION writes, and the RELION GUI can open the project and add our
External job after the Class3D job (it becomes ``External/job004/``).  Orientations and noise come
from numpy with a fixed seed and relion_refine gets ``--random_seed``, so a regenerated project
classifies the same way.  Only the last iteration and the metadata are committed (``.gitignore``).

Run from anywhere:  ``python example_project/make_example.py``  (needs relion_project,
relion_import, relion_refine and relion_pipeliner on PATH, e.g. Debian's ``apt-get install relion``,
and occupy_relion installed).  It deletes and remakes Simulation/, Import/, Class3D/, External/ and
default_pipeline.star in this directory.

Measured run time (Debian RELION 3.1.3, 2 cores shared with other work): 3 min 38 s and 5 min 33 s
in two runs, almost all of it relion_refine; both runs gave byte-identical model.star and data.star.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import mrcfile
import numpy as np

from occupy_relion.synthetic import PROTEIN_ATOM_DENSITY, Particle, render

PROJECT = Path(__file__).resolve().parent
BOX = 64
PIXEL_SIZE = 3.5  # Å
PARTICLES_PER_MAP = 400
WHITE_NOISE = 0.12  # sd of the white noise added to the projections (whose own sd is about 0.1)
CLASSES = 3
ITERATIONS = 25
THREADS = 2
SEED = 7

#: domain centres (Å from the box centre) and radii (Å); the last one is the variable domain
DOMAINS = (((-22.0, -8.0, 0.0), 18.0), ((14.0, -12.0, 4.0), 16.0), ((0.0, 16.0, -6.0), 14.0), ((30.0, 18.0, 10.0), 17.0))
#: name of each simulated map and the occupancy of its variable domain
VARIANTS = (("present", 1.0), ("absent", 0.0), ("partial", 0.5))

#: everything this script makes; removed before regenerating (nothing else is touched)
GENERATED = ("Simulation", "Import", "Class3D", "External", ".Nodes", ".TMP_runfiles", "default_pipeline.star",
             ".pipeline_has_changed", "pipeline_.log")


def particle(occupancy: float) -> Particle:
    """Four domains of random atoms; the fourth at ``occupancy``.  Same atoms for every variant."""
    rng = np.random.default_rng(SEED)
    atoms, owner = [], []
    for index, (centre, radius) in enumerate(DOMAINS):
        count = int(PROTEIN_ATOM_DENSITY * 4 / 3 * np.pi * radius**3)
        direction = rng.standard_normal((count, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        distance = radius * rng.random(count) ** (1 / 3)
        atoms.append(np.asarray(centre) + direction * distance[:, None])
        owner.append(np.full(count, index))
    centres = np.array([centre for centre, _ in DOMAINS])
    radius = max(r for _, r in DOMAINS)
    return Particle(np.concatenate(atoms), np.concatenate(owner), centres, radius, (1.0, 1.0, 1.0, occupancy))


def write_map(path: Path, volume: np.ndarray) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(volume.astype(np.float32))
        mrc.voxel_size = PIXEL_SIZE


def run(command: list[str]) -> None:
    """Run a RELION program in the project directory; stop on failure."""
    print("+", " ".join(command), flush=True)
    subprocess.run(command, cwd=PROJECT, check=True, stdout=subprocess.DEVNULL)


OPTICS = f"""
# version 30001

data_optics

loop_
_rlnOpticsGroup #1
_rlnOpticsGroupName #2
_rlnVoltage #3
_rlnSphericalAberration #4
_rlnAmplitudeContrast #5
_rlnImagePixelSize #6
_rlnImageSize #7
_rlnImageDimensionality #8
1 optics1 300.0 2.7 0.1 {PIXEL_SIZE} {BOX} 2

"""


def star_loop(name: str, labels: list[str], rows: list[str]) -> str:
    header = "\n".join(f"_rln{label} #{i}" for i, label in enumerate(labels, start=1))
    return f"\n# version 30001\n\ndata_{name}\n\nloop_\n{header}\n" + "\n".join(rows) + "\n"


def simulate() -> None:
    """Maps, noisy projections and the merged particles STAR file, in Simulation/.

    Orientations and noise come from numpy with a fixed seed (relion_project has no seed option),
    so the particles are the same every time.
    """
    simulation = PROJECT / "Simulation"
    simulation.mkdir()
    rng = np.random.default_rng(SEED)
    maps = []
    for name, occupancy in VARIANTS:
        volume = render(particle(occupancy), (BOX, BOX, BOX), PIXEL_SIZE, blur=2.0)
        write_map(simulation / f"{name}.mrc", volume)
        maps.append(volume)
        # uniformly random orientations: rot and psi uniform, cos(tilt) uniform
        rot = rng.uniform(-180, 180, PARTICLES_PER_MAP)
        tilt = np.degrees(np.arccos(rng.uniform(-1, 1, PARTICLES_PER_MAP)))
        psi = rng.uniform(-180, 180, PARTICLES_PER_MAP)
        rows = [f"{a:.4f} {b:.4f} {c:.4f} 0 0 1" for a, b, c in zip(rot, tilt, psi)]
        angles = simulation / f"{name}_angles.star"
        angles.write_text(OPTICS + star_loop(
            "particles", ["AngleRot", "AngleTilt", "AnglePsi", "OriginXAngst", "OriginYAngst", "OpticsGroup"], rows))
        run(["relion_project", "--i", f"Simulation/{name}.mrc", "--o", f"Simulation/{name}",
             "--ang", f"Simulation/{name}_angles.star", "--angpix", str(PIXEL_SIZE)])
        stack = simulation / f"{name}.mrcs"
        with mrcfile.open(stack, mode="r+") as mrc:
            noise = rng.normal(0.0, WHITE_NOISE, mrc.data.shape).astype(np.float32)
            # divided by the noise sd: a background of mean 0 and sd 1, as RELION expects
            mrc.data[...] = (mrc.data + noise) / np.float32(WHITE_NOISE)
    write_map(simulation / "consensus.mrc", np.mean(maps, axis=0))
    # Only image names go into the particles file: the true angles are left out, so the
    # classification starts from scratch, and all particles share one (fictitious) micrograph, so
    # RELION's per-micrograph groups do not know the truth.  The stack name tells which map a
    # particle came from.
    rows = [f"{index:06d}@Simulation/{name}.mrcs Simulation/micrograph.mrc 1"
            for name, _ in VARIANTS for index in range(1, PARTICLES_PER_MAP + 1)]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    (simulation / "particles.star").write_text(
        OPTICS + star_loop("particles", ["ImageName", "MicrographName", "OpticsGroup"], rows))


def add_and_run(job_type: str, options: dict[str, str], job: str) -> None:
    """Add a job with relion_pipeliner and run it (one at a time: 3.1 runs only the first of several)."""
    text = ";".join(f"{key} == {value}" for key, value in options.items())
    run(["relion_pipeliner", "--addJob", job_type, "--addJobOptions", text])
    run(["relion_pipeliner", "--RunJobs", job, "--sec_wait_after", "1"])
    if not (PROJECT / job / "RELION_JOB_EXIT_SUCCESS").exists():
        sys.exit(f"make_example: {job} did not succeed, see {PROJECT / job}run.err")


def main() -> int:
    for program in ("relion_project", "relion_import", "relion_refine", "relion_pipeliner"):
        if shutil.which(program) is None:
            sys.exit(f"make_example: {program} not found on PATH (install RELION, e.g. apt-get install relion)")
    start = time.time()
    for name in GENERATED:
        path = PROJECT / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    for lock in PROJECT.glob(".relion_lock*"):
        shutil.rmtree(lock)
    for gui_file in PROJECT.glob(".gui_*"):
        gui_file.unlink()

    # what the RELION GUI writes when it starts a new project: .gui_projectdir (else the GUI asks whether
    # this is a project) and an empty pipeline
    (PROJECT / ".gui_projectdir").touch()
    (PROJECT / "default_pipeline.star").write_text(
        "\n# version 30001\n\ndata_pipeline_general\n\n_rlnPipeLineJobCounter                       1\n \n")
    simulate()
    add_and_run("Import", {"do_raw": "No", "do_other": "Yes", "fn_in_other": "Simulation/particles.star",
                           "node_type": "Particles STAR file (.star)"}, "Import/job001/")
    add_and_run("Import", {"do_raw": "No", "do_other": "Yes", "fn_in_other": "Simulation/consensus.mrc",
                           "node_type": "3D reference (.mrc)"}, "Import/job002/")
    add_and_run("Class3D", {
        "fn_img": "Import/job001/particles.star",
        "fn_ref": "Import/job002/consensus.mrc",
        "ref_correct_greyscale": "No",
        "ini_high": "30",
        "do_ctf_correction": "No",
        "particle_diameter": "150",
        "nr_classes": str(CLASSES),
        "tau_fudge": "4",
        "nr_iter": str(ITERATIONS),
        "sampling": "15 degrees",
        "offset_range": "2",
        "offset_step": "1",
        "sym_name": "C1",
        "nr_pool": "30",
        "do_combine_thru_disc": "No",
        "do_parallel_discio": "Yes",
        "skip_gridding": "Yes",
        "nr_mpi": "1",
        "nr_threads": str(THREADS),
        "other_args": f"--random_seed {SEED}",
    }, "Class3D/job003/")
    minutes, seconds = divmod(round(time.time() - start), 60)
    print(f"make_example: done in {minutes} min {seconds} s; last iteration Class3D/job003/run_it{ITERATIONS:03d}_*")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Relative occupancy on semi-synthetic cases built from real EMDB maps, ours and the published tool's.

Each case (``occupy_relion.semisynthetic``): a slab of a real map (EMD-5168, F-actin: the middle 40 % of
the filament along z; EMD-1703, desmosome, inverted (deposited with the protein dark): the middle 50 %
along y) scaled to 0.5 or 0.25 about the
solvent mean with a soft edge of one low-pass length, the lost noise power refilled with noise of the
map's own solvent spectrum; "2× noise power" adds as much again of that noise everywhere.  Each case
is made with three noise seeds.  Both tools estimate the scale of the original map and of each case
(occupancy mode, default settings); the reading is the median over the slab's core of the voxel's
scale on the case over its scale on the original, divided by the same median outside the slab, over
the top 10 % and top 3 % of the original map by low-passed density.  The table gives the error
(reading − truth): mean over the seeds and the worst seed.

And the real noise of a reconstruction: a slab of the RELION 3.1 Refine3D half maps' mean (shared/)
scaled and refilled with their half difference, read with and without the half-map noise.

Also: a detergent-belt-like disc at 0.21 × the protein's low-passed density around a synthetic
particle: what each tool's scale reads there (relative to the protein) and how high the equalised map
lifts it (relative to the equalised protein).

Run from the repository root:  python benchmarks/bench_real_maps.py [--output results/real_maps.md]
(about 2-3 minutes on 2 cores; the peer's first call builds its venv).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np

from occupy_relion import semisynthetic as ss
from occupy_relion import synthetic
from occupy_relion.core import ModifyParameters, estimate_scale, filters, half_map_mean, half_map_noise, modify_map

ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (ROOT.parent / "shared", Path("/work/shared")) if p.exists()), ROOT.parent / "shared")


@dataclass(frozen=True)
class MapCase:
    """A real map and the slab of it that is scaled down."""

    name: str
    axis: int
    start: float  # fraction of the box along the axis
    stop: float
    invert: bool = False  # deposited with the protein dark (a sub-tomogram average): used inverted


MAPS = (MapCase("emd_5168", 0, 0.3, 0.7), MapCase("emd_1703", 1, 0.25, 0.75, invert=True))
FACTORS = (0.5, 0.25)
EXTRA = (0.0, 1.0)
SEEDS = (3, 4, 5)
TOPS = (0.10, 0.03)


def _write(path: Path, volume: np.ndarray, pixel: float) -> None:
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(volume, np.float32))
        mrc.voxel_size = pixel


def peer_scale(peer: Path, volume: np.ndarray, pixel: float, extra: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The published tool's scale (and amplified map, if asked) of ``volume``, run in a scratch dir;
    empty when it fails."""
    with tempfile.TemporaryDirectory() as work:
        _write(Path(work) / "m.mrc", volume, pixel)
        done = subprocess.run(["bash", str(peer), "-i", "m.mrc", "--occupancy", *extra], cwd=work,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        out: dict[str, np.ndarray] = {}
        if done.returncode != 0:  # the published tool crashes on some maps (e.g. a non-cubic box)
            return out
        for path in Path(work).glob("*.mrc"):
            if path.name.startswith("scale_"):
                out["scale"] = mrcfile.read(path).astype(np.float32)
            elif "ampl" in path.name:
                out["amplified"] = mrcfile.read(path).astype(np.float32)
        return out


def _ours(volume: np.ndarray, pixel: float) -> np.ndarray:
    return estimate_scale(volume, pixel, threads=2).scale


def _far_solvent(own, shape: tuple[int, ...], pixel: float) -> np.ndarray:
    """The far-solvent weight the core measures its noise floor in (``core.scale._far_from_molecule``,
    the core's own definition), at full size."""
    from occupy_relion.core.scale import _far_from_molecule

    grid = own.confidence_grid
    spacing = tuple(float(s) for s in np.asarray(shape) * pixel / np.asarray(grid.shape))
    far = _far_from_molecule(grid, own.settings.kernel_radius_angstrom + own.settings.lowpass_angstrom, spacing)
    return filters.upsample_linear(far.astype(np.float32), shape)


def real_map_rows(peer: Path | None, refill: str = "solvent") -> list[dict]:
    """``refill``: the noise the slab's lost power is refilled with, that of the whole solvent (the
    voxels weighted by 1 − confidence) or of the far solvent only (where the core measures its floor)."""
    rows = []
    for case_map in MAPS:
        path = SHARED / "maps" / f"{case_map.name}.map"
        with mrcfile.open(path, permissive=True) as mrc:
            volume = np.asarray(mrc.data, np.float32).copy()
            pixel = float(mrc.voxel_size.x)
        if case_map.invert:  # as the job's "density looks inverted" warning tells a user to do
            np.negative(volume, out=volume)
        own = estimate_scale(volume, pixel, threads=2)
        lowpass = own.settings.lowpass_angstrom
        solvent = (_far_solvent(own, volume.shape, pixel) if refill == "far"
                   else filters.upsample_linear(1 - own.confidence_grid, volume.shape))
        peer_original = peer_scale(peer, volume, pixel).get("scale") if peer else None
        length = volume.shape[case_map.axis] * pixel
        slab = ss.Slab(case_map.axis, case_map.start * length, case_map.stop * length, lowpass)
        for extra in EXTRA:
            for factor in FACTORS:
                readings: dict[tuple[str, float], list[float]] = {}
                seconds = {"ours": 0.0, "peer": 0.0}
                for seed in SEEDS:
                    case = ss.make_case(volume, pixel, solvent, slab, factor, extra, seed=seed, threads=2,
                                        solvent_mean=own.settings.solvent_mean)
                    started = time.perf_counter()
                    scales = {"ours": (_ours(case.volume, pixel), own.scale)}
                    seconds["ours"] += time.perf_counter() - started
                    if peer and peer_original is not None:
                        started = time.perf_counter()
                        peer_case = peer_scale(peer, case.volume, pixel).get("scale")
                        seconds["peer"] += time.perf_counter() - started
                        if peer_case is not None:
                            scales["peer"] = (peer_case, peer_original)
                    for top in TOPS:
                        core, outside = ss.regions(case, volume, top, margin=1.5 * lowpass, lowpass=lowpass)
                        for tool, (scale, original) in scales.items():
                            readings.setdefault((tool, top), []).append(
                                ss.relative_occupancy(scale, original, core, outside) - factor)
                rows.append({"map": case_map.name, "factor": factor, "extra": extra, "readings": readings,
                             "seconds": seconds})
                print(_row_text(rows[-1], peer is not None), flush=True)
    return rows


REFINE3D = SHARED / "relion" / "relion31_project" / "Refine3D" / "job010"


def half_map_rows(peer: Path | None, refine: Path = REFINE3D, label: str = "") -> list[str]:
    """The half maps of a RELION Refine3D job (default: the RELION 3.1 one of shared/): a slab (20-50 %
    along each axis in turn) of their mean scaled to 0.5 or 0.25 and refilled with ± their half
    difference, the reconstruction's own noise (no model of it).  Ours with the half-map noise (as the
    job uses a Refine3D's half maps), ours from the map alone (as for a Class3D class, which has none),
    and the published tool on the map.  ``label`` starts each row (which refinement)."""
    from occupy_relion.core import measure, normalise

    halves, pixel = _halves(refine)
    mean, difference = half_map_mean(*halves), half_map_noise(*halves)
    originals = {"with half maps": normalise(measure(mean, pixel, noise=difference, threads=2)),
                 "map alone": estimate_scale(mean, pixel, threads=2)}
    lowpass = originals["map alone"].settings.lowpass_angstrom
    mu = originals["with half maps"].settings.solvent_mean
    peer_original = peer_scale(peer, mean, pixel).get("scale") if peer else None
    lines = []
    for factor in FACTORS:
        readings: dict[tuple[str, float], list[float]] = {}
        for axis in range(3):
            length = mean.shape[axis] * pixel
            slab = ss.Slab(axis, 0.2 * length, 0.5 * length, lowpass)
            for sign in (1, -1):
                case, noise = ss.make_half_map_case(halves[0], halves[1], pixel, slab, factor, mu, sign)
                scales = {"with half maps": normalise(measure(case.volume, pixel, noise=noise, threads=2)).scale,
                          "map alone": _ours(case.volume, pixel)}
                if peer_original is not None:
                    peer_case = peer_scale(peer, case.volume, pixel).get("scale")
                    if peer_case is not None:
                        scales["published"] = peer_case
                for top in TOPS:
                    core, outside = ss.regions(case, mean, top, margin=1.5 * lowpass, lowpass=lowpass)
                    for tool, scale in scales.items():
                        original = originals[tool].scale if tool in originals else peer_original
                        readings.setdefault((tool, top), []).append(
                            ss.relative_occupancy(scale, original, core, outside) - factor)
        for tool in ("with half maps", "map alone", "published"):
            cells = [_cell(readings.get((tool, top))) for top in TOPS]
            if tool != "published" or peer:
                name = tool if tool == "published" else f"ours, {tool}"
                lines.append(f"| {label}{factor:g} | {name} | {cells[0]} | {cells[1]} |")
                print(lines[-1], flush=True)
    return lines


def _halves(refine: Path) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """The two unfiltered half maps of a Refine3D job directory and their pixel size."""
    halves = []
    for k in (1, 2):
        with mrcfile.open(refine / f"run_half{k}_class001_unfil.mrc", permissive=True) as mrc:
            halves.append(np.asarray(mrc.data, np.float32).copy())
            pixel = float(mrc.voxel_size.x)
    return (halves[0], halves[1]), pixel


def peak_snr(refine: Path, lowpass: float) -> float:
    """The median low-passed density of the top 3 % of a refinement's half-map mean over the sd of its
    low-passed half difference there: how far its strongest density stands out of its own noise."""
    halves, pixel = _halves(refine)
    mean = filters.resample_lowpass(half_map_mean(*halves), pixel, halves[0].shape, lowpass)
    noise = filters.resample_lowpass(half_map_noise(*halves), pixel, halves[0].shape, lowpass)
    top = mean >= np.quantile(mean, 0.97)
    return float(np.median(mean[top]) / noise[top].std())


def refine_synthetic(directory: Path, noise: float) -> Path:
    """A small RELION 3.1 auto-refinement (relion_refine_mpi, 3 ranks, split halves) of 1200 synthetic
    particles (64 px, 3.5 Å; half of them without the third domain) with white noise of sd ``noise``
    (projections of sd about 1): its Refine3D/job001/ (about 2 minutes on 2 cores)."""
    import sys

    sys.path.insert(0, str(ROOT))
    from tests.pipeliner import synthetic_particles

    project = directory / f"refine_noise{noise:g}"
    job = project / "Refine3D" / "job001"
    if (job / "run_half2_class001_unfil.mrc").exists():
        return job
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    synthetic_particles(project, env, box=64, pixel_size=3.5, per_class=600, noise=noise, seed=5)
    job.mkdir(parents=True)
    command = ["mpirun", "--oversubscribe", "-np", "3", "relion_refine_mpi", "--o", "Refine3D/job001/run",
               "--auto_refine", "--split_random_halves", "--i", "Synthetic/particles.star",
               "--ref", "Synthetic/reference.mrc", "--firstiter_cc", "--ini_high", "40", "--pad", "2",
               "--particle_diameter", "180", "--flatten_solvent", "--zero_mask", "--oversampling", "1",
               "--healpix_order", "1", "--auto_local_healpix_order", "2", "--offset_range", "3",
               "--offset_step", "2", "--sym", "C1", "--low_resol_join_halves", "40", "--norm", "--scale",
               "--j", "1", "--random_seed", "1", "--dont_combine_weights_via_disc", "--pool", "30"]
    with open(project / "refine.log", "w") as log:
        subprocess.run(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    return job


def _cell(errors: list[float] | None) -> str:
    if not errors:
        return "fails"
    worst = max(errors, key=abs)
    return f"{np.mean(errors):+.3f} ({worst:+.3f})"


def _row_text(row: dict, with_peer: bool) -> str:
    noise = "own" if row["extra"] == 0 else "2× power"
    cells = [row["map"].upper().replace("_", "-"), f"{row['factor']:g}", noise]
    for tool in ("ours", "peer") if with_peer else ("ours",):
        for top in TOPS:
            cells.append(_cell(row["readings"].get((tool, top))))
    return "| " + " | ".join(cells) + " |"


def belt_rows(peer: Path | None) -> list[str]:
    """The detergent-belt disc: scale there / protein, and equalised disc / equalised protein."""
    shape = (112, 112, 112)
    particle = synthetic.make_particle((1.0, 1.0, 1.0), seed=2)
    clean = synthetic.render(particle, shape, 1.0)
    labels = synthetic.domain_masks(particle, shape, 1.0)
    lowpassed = filters.resample_lowpass(clean, 1.0, shape, 8.0)
    z, y, x = np.indices(shape, dtype=np.float32) - 56
    radius = np.sqrt(x ** 2 + y ** 2)
    disc = filters.resample_lowpass(((np.abs(z) < 10) & (radius > 30) & (radius < 50)).astype(np.float32),
                                    1.0, shape, 6.0)
    volume = clean + disc * np.float32(0.21 * np.median(lowpassed[labels > 0]))
    volume += synthetic.correlated_noise(shape, 1.0, 0.25 * float(clean[labels > 0].std()), seed=7)
    inside, protein = disc > 0.9, labels > 0

    def level(v: np.ndarray, mu: float, where: np.ndarray) -> float:
        return float(np.median(filters.resample_lowpass(v, 1.0, shape, 8.0)[where] - mu))

    est = estimate_scale(volume, 1.0, threads=2)
    mu = est.solvent.mean
    lines = []
    read = np.median(est.scale[inside]) / np.median(est.scale[protein])
    for gain in (ModifyParameters().max_gain, math.inf):
        eq = modify_map(volume, est, 1.0, ModifyParameters(max_gain=gain), threads=2)["equalised"]
        lifted = level(eq, mu, inside) / level(eq, mu, protein)
        lines.append(f"| ours, --max_gain {gain:g} | {read:.2f} | {lifted:.2f} |")
    if peer:
        out = peer_scale(peer, volume, 1.0, ("--amplify", "inf"))
        peer_mu = float(np.median(volume[(labels == 0) & (disc < 0.01)]))
        lifted = (level(out["amplified"], peer_mu, inside) / level(out["amplified"], peer_mu, protein)
                  if "amplified" in out else float("nan"))
        lines.append(f"| published 0.1.13, --amplify inf | "
                     f"{np.median(out['scale'][inside]) / np.median(out['scale'][protein]):.2f} | {lifted:.2f} |")
    lines.append(f"| (input) | 0.21 (truth) | {level(volume, mu, inside) / level(volume, mu, protein):.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer", type=Path, default=SHARED / "peers" / "occupy_peer.sh")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--output", type=Path, help="also write the tables (Markdown) here")
    parser.add_argument("--refine", type=float, nargs="*", default=[], metavar="NOISE",
                        help="also run small RELION 3.1 auto-refinements of synthetic particles with these image "
                             "noise sds (needs relion_refine_mpi and mpirun) and read their half maps")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "occupy-bench-refine",
                        help="where the --refine projects are made (kept: a second run reuses them)")
    parser.add_argument("--refill", choices=["solvent", "far"], default="solvent",
                        help="refill the slab with the noise of the whole solvent (default) or of the far solvent")
    args = parser.parse_args()
    peer = None if args.no_peer or not args.peer.exists() else args.peer
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    started = time.perf_counter()
    header = ("| map | truth | noise | ours top 10 % | ours top 3 % | published top 10 % | published top 3 % |\n"
              "|---|---|---|---|---|---|---|")
    print(header)
    rows = real_map_rows(peer, args.refill)
    halves_header = ("| truth | tool | top 10 % | top 3 % |\n|---|---|---|---|")
    print("\nRELION 3.1 Refine3D, refilled with its own half-map noise\n" + halves_header)
    halves = half_map_rows(peer) if REFINE3D.exists() else ["| (shared/relion/relion31_project not found) | | | |"]
    for noise in args.refine:
        job = refine_synthetic(args.workdir, noise)
        label = f"noise {noise:g}, peak SNR {peak_snr(job, 10.5):.1f}: "
        halves += half_map_rows(peer, job, label)
    belt_header = "| belt disc (truth 0.21) | scale in disc / protein | equalised disc / protein |\n|---|---|---|"
    belt = belt_rows(peer)
    print("\n" + belt_header + "\n" + "\n".join(belt))
    text = ("Error of the relative occupancy read (reading − truth): mean over noise seeds "
            f"{', '.join(map(str, SEEDS))} (worst seed in brackets).\n\n" + header + "\n"
            + "\n".join(_row_text(r, peer is not None) for r in rows)
            + "\n\nRELION 3.1 Refine3D (shared/relion/relion31_project, 64³, 3.5 Å), a slab refilled with ± its "
            "half-map difference (the reconstruction's own noise): mean over 3 axes × 2 signs (worst case in "
            "brackets).\n\n" + halves_header + "\n" + "\n".join(halves) + "\n\n" + belt_header + "\n"
            + "\n".join(belt) + f"\n\n{time.perf_counter() - started:.0f} s in all on 2 cores.\n")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

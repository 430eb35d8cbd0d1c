#!/usr/bin/env python3
"""Speed, memory and accuracy of our local-scale core against the published tool (OccuPy 0.1.13).

For each box size a synthetic map with known occupancy (domains at 1, 0.5 and 0.25; the same particle
in every box, so bigger boxes only add solvent) is written as MRC in a temporary directory (not timed).
Then, each in a fresh subprocess so that wall time and peak memory are clean:

* ours: load the map, time ``measure`` + ``normalise`` (the estimate) and ``modify_map`` (equalised),
  write the scale map;
* the peer (``shared/peers/occupy_peer.sh``): its occupancy-mode estimate, and an amplify run
  (full equalisation), wall time including its start-up.

Accuracy, read from each tool's scale map: median scale in each domain divided by the median in the
full-occupancy domain, and the median scale in the solvent (inside the inscribed ball, more than
``--solvent-margin`` Å from every domain).  The peer processes boxes above 256 at 256 (Fourier
cropped): its masks are evaluated on its own output grid.

Only the public core API is called, so the harness keeps working while the core changes.

    python benchmarks/bench_core.py --sizes 128 256 --noise 1.0
    python benchmarks/bench_core.py --calibrate 0.25 0.5 1 2.5      # accuracy at 128³ only
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve()
DEFAULT_PEER = HERE.parents[2] / "shared" / "peers" / "occupy_peer.sh"
OCCUPANCY = (1.0, 0.5, 0.25)
DEFAULT_NOISE = 0.25  # "moderate": where the peer reads 0.48 / 0.27 (benchmarks/results/calibration.md)
HIGH_NOISE_FACTOR = 2.5


# --------------------------------------------------------------------------------------------------
# children: each runs in a fresh interpreter (python bench_core.py _<name> ...)
# --------------------------------------------------------------------------------------------------

def _peak_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def child_make(size: int, noise: float, seed: int, map_path: str, particle_path: str) -> None:
    """Write the synthetic map and its particle (the truth)."""
    import mrcfile
    import numpy as np

    from occupy_relion.synthetic import noisy_map

    volume, particle = noisy_map(shape=(size,) * 3, pixel_size=1.0, noise=noise, occupancy=OCCUPANCY, seed=seed)
    with mrcfile.new(map_path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(volume, dtype=np.float32))
        mrc.voxel_size = 1.0
    with open(particle_path, "wb") as handle:
        pickle.dump(particle, handle)


def _core_imports():
    """The imports a run of ours needs (also what the baseline child loads)."""
    import mrcfile  # noqa: F401
    import numpy  # noqa: F401
    import scipy.fft  # noqa: F401
    import scipy.ndimage  # noqa: F401

    import occupy_relion.core as core

    return core


def child_baseline() -> None:
    """Peak RSS of an interpreter with Python, numpy, scipy, mrcfile and our core imported."""
    _core_imports()
    print(json.dumps({"baseline_rss": _peak_rss_bytes()}))


def child_ours(map_path: str, scale_path: str, threads: int, mode: str) -> None:
    """Load, time estimate and estimate + equalised, report peak RSS, write the scale map."""
    started = time.perf_counter()
    core = _core_imports()
    import mrcfile
    import numpy as np

    imported = time.perf_counter()
    with mrcfile.open(map_path, permissive=True) as mrc:
        pixel_size = float(mrc.voxel_size.x)
    volume = mrcfile.read(map_path)  # one map-sized copy, float32
    volume = np.ascontiguousarray(volume, dtype=np.float32)
    rss_loaded = _peak_rss_bytes()

    # normalise() may or may not take threads, depending on the core's version
    normalise_kwargs = {"threads": threads} if "threads" in inspect.signature(core.normalise).parameters else {}
    t0 = time.perf_counter()
    measurement = core.measure(volume, pixel_size, core.ScaleParameters(mode=mode), threads=threads)
    estimate = core.normalise(measurement, **normalise_kwargs)
    t1 = time.perf_counter()
    rss_estimate = _peak_rss_bytes()
    del measurement
    maps = core.modify_map(volume, estimate, pixel_size, core.ModifyParameters(amplify=math.inf), threads=threads)
    t2 = time.perf_counter()
    rss_equalised = _peak_rss_bytes()
    # what a job also needs to write its scale and confidence maps: both at full size
    scale, confidence = estimate.scale, estimate.confidence
    t3 = time.perf_counter()
    rss_full_maps = _peak_rss_bytes()

    equalised = maps["equalised"]
    finite = bool(np.isfinite(equalised).all() and np.isfinite(scale).all() and np.isfinite(confidence).all())
    del maps, equalised, confidence
    with mrcfile.new(scale_path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(scale, dtype=np.float32))
        mrc.voxel_size = pixel_size
    settings = {k: (v if isinstance(v, (int, float, str, bool)) or v is None else getattr(v, "value", str(v)))
                for k, v in dataclasses.asdict(estimate.settings).items()}
    print(json.dumps({
        "import_s": imported - started,
        "estimate_s": t1 - t0,
        "estimate_equalised_s": t2 - t0,
        "full_scale_confidence_s": t3 - t2,
        "rss_loaded": rss_loaded,
        "rss_estimate": rss_estimate,
        "rss_equalised": rss_equalised,
        "rss_full_maps": rss_full_maps,
        "finite": finite,
        "settings": settings,
    }))


# --------------------------------------------------------------------------------------------------
# parent side
# --------------------------------------------------------------------------------------------------

@dataclass
class ChildResult:
    """How a measured child process ended, and what it used."""

    returncode: int
    wall_s: float
    peak_rss: int  # bytes, the child and everything it waited for
    stdout: str
    stderr: str


def run_child(command: list[str], cwd: Path, timeout: float | None = None) -> ChildResult:
    """Run ``command`` in a fresh process; wall time from start to exit, peak RSS from wait4."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildResult(process.returncode, wall, usage.ru_maxrss * 1024, out.read(), err.read())


def self_command(*args: str) -> list[str]:
    return [sys.executable, str(HERE), *args]


def last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in child output")


def tail(text: str, lines: int = 3) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def read_accuracy(scale_path: Path, particle, solvent_margin: float, shrink: float) -> dict:
    """Median scale per domain (relative to the full domain) and in the solvent.

    Memory stays small: the map is memory-mapped, domain masks are made on a central crop, and the
    solvent median uses a strided subsample (≤ ~2 M voxels).
    """
    import mrcfile
    import numpy as np

    from occupy_relion.synthetic import domain_masks

    with mrcfile.mmap(scale_path, permissive=True) as mrc:
        data = mrc.data
        shape = data.shape
        pixel = float(mrc.voxel_size.x)
        centres = np.asarray(particle.centres, dtype=np.float64)
        extent = float(np.abs(centres).max() + particle.radius + 2)  # Å from the box centre
        half = min(int(math.ceil(extent / pixel)) + 1, min(shape) // 2)
        crop_shape = tuple(min(2 * half, n) for n in shape)
        offset = [n // 2 - c // 2 for n, c in zip(shape, crop_shape)]
        crop = np.asarray(data[offset[0]:offset[0] + crop_shape[0], offset[1]:offset[1] + crop_shape[1],
                               offset[2]:offset[2] + crop_shape[2]], dtype=np.float32)
        labels = domain_masks(particle, crop_shape, pixel, shrink=shrink)
        medians = [float(np.median(crop[labels == k + 1])) for k in range(len(particle.occupancy))]

        step = max(1, int(round(min(shape) / 128)))
        sub = np.asarray(data[::step, ::step, ::step], dtype=np.float32)
    z, y, x = np.meshgrid(*[(np.arange(0, n, step) - n // 2) * pixel for n in shape], indexing="ij")
    radius_box = (min(shape) // 2 - 1) * pixel
    solvent = (x ** 2 + y ** 2 + z ** 2) <= radius_box ** 2
    for c in centres:  # c is x, y, z in Å
        solvent &= ((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) > (particle.radius + solvent_margin) ** 2
    full = medians[0]
    relative = [m / full if full > 0 else float("nan") for m in medians]
    return {
        "grid": list(shape),
        "grid_pixel": pixel,
        "domain_median": medians,
        "relative": relative,
        "solvent_median": float(np.median(sub[solvent])),
        "solvent_voxels_sampled": int(solvent.sum()),
    }


def find_output(directory: Path, prefix: str) -> Path | None:
    found = sorted(directory.glob(prefix + "*.mrc"))
    return found[0] if found else None


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Row:
    """One line of the speed table: a tool at a box size and noise level."""

    tool: str
    size: int
    noise: float
    processed: str = ""
    estimate_s: float | None = None
    equalised_s: float | None = None
    process_s: float | None = None  # wall time of the whole process incl. start-up (estimate run)
    peak_gb: float | None = None
    copies: float | None = None
    accuracy: dict | None = None
    load: str = ""
    note: str = ""
    raw: dict = field(default_factory=dict)


def bench_size(size: int, noise: float, args, baseline_rss: int | None, accuracy_only: bool = False) -> list[Row]:
    """All runs for one box size and noise level; temporary files are deleted afterwards."""
    rows: list[Row] = []
    work = Path(tempfile.mkdtemp(prefix=f"bench{size}_", dir=args.tmpdir))
    try:
        map_path, particle_path = work / "map.mrc", work / "particle.pkl"
        made = run_child(self_command("_make", str(size), repr(noise), str(args.seed), str(map_path),
                                      str(particle_path)), work)
        if made.returncode != 0:
            raise RuntimeError(f"making the {size}³ map failed: {tail(made.stderr)}")
        with open(particle_path, "rb") as handle:
            particle = pickle.load(handle)

        # ours (best of --repeat runs, each in a fresh process; accuracy from the first)
        load = loadavg()
        ours_dir = work / "ours"
        ours_dir.mkdir()
        scale_path = ours_dir / "scale.mrc"
        row = Row("ours", size, noise, processed=f"{size}³", load=load)
        runs = []
        for attempt in range(1 if accuracy_only else max(1, args.repeat)):
            result = run_child(self_command("_ours", str(map_path), str(scale_path), str(args.threads), args.mode),
                               ours_dir)
            if result.returncode != 0:
                row.note = f"failed: {tail(result.stderr, 2)}"
                break
            info = last_json(result.stdout)
            info["process_s"] = result.wall_s
            info["process_peak_rss"] = result.peak_rss
            runs.append(info)
            if attempt == 0:
                row.accuracy = read_accuracy(scale_path, particle, args.solvent_margin, args.shrink)
        if runs:
            best = min(runs, key=lambda info: info["estimate_equalised_s"])
            row.raw = dict(best)
            row.raw["runs"] = [{k: v for k, v in info.items() if k != "settings"} for info in runs]
            row.estimate_s = min(info["estimate_s"] for info in runs)
            row.equalised_s = best["estimate_equalised_s"]
            row.process_s = min(info["process_s"] for info in runs)
            peak = max(info["rss_equalised"] for info in runs)
            row.peak_gb = peak / 1e9
            if baseline_rss is not None:
                map_bytes = 4 * size ** 3
                row.copies = (peak - baseline_rss) / map_bytes
                row.raw["copies_estimate"] = (max(i["rss_estimate"] for i in runs) - baseline_rss) / map_bytes
                row.raw["copies_with_full_maps"] = (max(i["rss_full_maps"] for i in runs) - baseline_rss) / map_bytes
            row.raw["full_scale_confidence_s"] = min(info["full_scale_confidence_s"] for info in runs)
            if not all(info["finite"] for info in runs):
                row.note = "NaN/Inf in output!"
        rows.append(row)
        shutil.rmtree(ours_dir, ignore_errors=True)

        # the peer
        if not args.no_peer:
            variants = [("peer", [])]
            if args.peer_full and size > 256:
                variants.append(("peer full size", ["--max-box", str(size)]))
            for name, extra in variants:
                load = loadavg()
                peer_dir = work / name.replace(" ", "_")
                peer_dir.mkdir()
                processed = f"{min(size, 256)}³" if not extra else f"{size}³"
                row = Row(name, size, noise, processed=processed, load=load)
                estimate = run_child(["bash", str(args.peer), "-i", str(map_path), "--occupancy", *extra],
                                     peer_dir, timeout=args.peer_timeout)
                scale_file = find_output(peer_dir, "scale_occ_")
                if estimate.returncode != 0 or scale_file is None:
                    row.note = f"failed (rc {estimate.returncode}): {tail(estimate.stderr, 2)}"
                    rows.append(row)
                    continue
                row.estimate_s = estimate.wall_s
                row.process_s = estimate.wall_s
                row.peak_gb = estimate.peak_rss / 1e9
                row.raw["estimate_peak_rss"] = estimate.peak_rss
                row.raw["stdout_tail"] = tail(estimate.stdout, 6)
                row.accuracy = read_accuracy(scale_file, particle, args.solvent_margin, args.shrink)
                if not accuracy_only and not args.no_peer_amplify and (not extra or args.peer_full_amplify):
                    for f in peer_dir.iterdir():
                        f.unlink()
                    amplified = run_child(["bash", str(args.peer), "-i", str(map_path), "--occupancy",
                                           "--amplify", "inf", *extra], peer_dir, timeout=args.peer_timeout)
                    if amplified.returncode == 0 and find_output(peer_dir, "ampl_") is not None:
                        row.equalised_s = amplified.wall_s
                        row.peak_gb = max(estimate.peak_rss, amplified.peak_rss) / 1e9
                        row.raw["amplify_peak_rss"] = amplified.peak_rss
                    else:
                        row.note = f"amplify failed (rc {amplified.returncode}): {tail(amplified.stderr, 2)}"
                rows.append(row)
                shutil.rmtree(peer_dir, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


# --------------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------------

def fmt(value, spec: str = ".2f", empty: str = "—") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return empty
    return format(value, spec)


def accuracy_cells(row: Row) -> list[str]:
    if row.accuracy is None:
        return ["—"] * 5
    rel = row.accuracy["relative"]
    errors = [abs(r - t) for r, t in zip(rel[1:], OCCUPANCY[1:])]
    return [fmt(row.accuracy["domain_median"][0]), fmt(rel[1]), fmt(rel[2]), fmt(max(errors)),
            fmt(row.accuracy["solvent_median"])]


def full_maps_cell(row: Row) -> str:
    seconds = row.raw.get("full_scale_confidence_s")
    copies = row.raw.get("copies_with_full_maps")
    if seconds is None:
        return "—"
    return f"{seconds:.2f} / {fmt(copies, '.1f')}"


def speed_table(rows: list[Row]) -> str:
    head = ("| box | tool | processed at | estimate (s) | estimate + equalised (s) | peak memory (GB) "
            "| whole process (s)² | map-sized copies¹ | + full-size S & C: s / copies³ | full domain (abs.) "
            "| 0.5 domain (rel.) | 0.25 domain (rel.) | max error "
            "| solvent reads | load (1/5/15 min) | note |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append("| " + " | ".join([
            f"{r.size}³", r.tool, r.processed, fmt(r.estimate_s), fmt(r.equalised_s), fmt(r.peak_gb),
            fmt(r.process_s), fmt(r.copies, ".1f"), full_maps_cell(r), *accuracy_cells(r), r.load, r.note]) + " |")
    return "\n".join(lines)


def accuracy_table(rows: list[Row]) -> str:
    head = ("| noise | box | tool | processed at | full domain (abs.) | 0.5 domain (rel.) | 0.25 domain (rel.) "
            "| max error | solvent reads | note |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append("| " + " | ".join([fmt(r.noise, "g"), f"{r.size}³", r.tool, r.processed,
                                         *accuracy_cells(r), r.note]) + " |")
    return "\n".join(lines)


FOOTNOTES = """\
Times: ours = `measure` + `normalise` (estimate) and that plus `modify_map` equalised (γ = ∞), inside
the process, threads = {threads}, best of {repeat} run(s); the peer = wall time of its whole process including start-up
(about 2 s of imports), estimate run (`--occupancy`) and amplify run (`--occupancy --amplify inf`).
Peak memory: ours = peak RSS of the process after the equalised map (includes the input map and
the interpreter); the peer = peak RSS of its process (max of both runs).
¹ Map-sized float32 copies = (peak RSS − baseline RSS {baseline:.2f} GB of an empty child with Python,
numpy, scipy, mrcfile and our core imported) / (4·N³); the input map itself counts as one.
² Wall time of the whole estimate process, start-up, imports, reading and writing maps included
(ours: also the equalised map; the peer: the estimate run).
³ Ours: extra time to get `estimate.scale` and `estimate.confidence` at full size after the equalised
map (what a job needs to write its scale and confidence maps), and the copies with both held too.
Accuracy: median scale in each domain ball (shrink {shrink} Å) / median in the full domain; solvent =
median scale inside the inscribed ball, > {margin} Å from every domain (strided subsample). The peer
works at 256³ for bigger boxes: masks evaluated on its output grid."""


def header_block(args) -> str:
    import platform

    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    repo = HERE.parents[1]
    def git(*arguments: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *arguments], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "occupy_relion/core")
    core_state = f"core at commit {commit}" + (" with uncommitted changes in occupy_relion/core" if dirty else "")
    return (f"Run {time.strftime('%Y-%m-%d %H:%M:%S')} on {platform.node()} ({os.cpu_count()} CPUs), "
            f"Python {platform.python_version()}, {core_state}; `uptime` at start: {uptime}\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        children = {"_make": lambda a: child_make(int(a[0]), float(a[1]), int(a[2]), a[3], a[4]),
                    "_baseline": lambda a: child_baseline(),
                    "_ours": lambda a: child_ours(a[0], a[1], int(a[2]), a[3])}
        children[argv[0]](argv[1:])
        return 0

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 384, 512], help="box sizes (cubic)")
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                        help=f"noise level of noisy_map (default {DEFAULT_NOISE}, 'moderate')")
    parser.add_argument("--high-noise-factor", type=float, default=HIGH_NOISE_FACTOR,
                        help="accuracy section at this many times the noise (0: skip)")
    parser.add_argument("--high-noise-sizes", type=int, nargs="*", default=None,
                        help="box sizes for the high-noise accuracy section (default: --sizes)")
    parser.add_argument("--calibrate", type=float, nargs="+", metavar="NOISE",
                        help="accuracy only, at 128³, for these noise levels (both tools)")
    parser.add_argument("--calibrate-size", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run ours this many times (fresh processes) and report the best times")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mode", default="occupancy", choices=["occupancy", "resolution"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--peer", type=Path, default=DEFAULT_PEER, help="occupy_peer.sh")
    parser.add_argument("--no-peer", action="store_true", help="run ours only")
    parser.add_argument("--no-peer-amplify", action="store_true", help="skip the peer's amplify run")
    parser.add_argument("--peer-full", action="store_true",
                        help="also run the peer at full size (--max-box N) for boxes above 256")
    parser.add_argument("--peer-full-amplify", action="store_true",
                        help="with --peer-full: also time the peer's full-size amplify run (slow)")
    parser.add_argument("--peer-timeout", type=float, default=1800)
    parser.add_argument("--solvent-margin", type=float, default=8.0, help="Å between domains and solvent")
    parser.add_argument("--shrink", type=float, default=0.0, help="Å to shrink each domain ball by")
    parser.add_argument("--tmpdir", default=None, help="where the temporary maps go")
    parser.add_argument("--output", type=Path, help="also write the Markdown here")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    if not args.no_peer and not args.peer.exists():
        parser.error(f"{args.peer}: peer script not found (use --peer or --no-peer)")

    out: list[str] = []
    all_rows: list[Row] = []

    def emit(text: str) -> None:
        print(text, flush=True)
        out.append(text)

    emit(header_block(args))

    if args.calibrate:
        rows = []
        for noise in args.calibrate:
            rows += bench_size(args.calibrate_size, noise, args, None, accuracy_only=True)
            print(f"  noise {noise}: done (load {loadavg()})", file=sys.stderr, flush=True)
        all_rows += rows
        emit(f"## Accuracy calibration at {args.calibrate_size}³ (occupancy mode)\n")
        emit(accuracy_table(rows))
    else:
        baseline = run_child(self_command("_baseline"), Path.cwd())
        baseline_rss = last_json(baseline.stdout)["baseline_rss"]
        rows = []
        for size in args.sizes:
            rows += bench_size(size, args.noise, args, baseline_rss)
            print(f"  {size}³: done (load {loadavg()})", file=sys.stderr, flush=True)
        all_rows += rows
        emit(f"## Speed, memory and accuracy, noise {args.noise:g} (occupancy mode)\n")
        emit(speed_table(rows))
        emit("\n" + FOOTNOTES.format(threads=args.threads, repeat=args.repeat, baseline=baseline_rss / 1e9,
                                      shrink=args.shrink, margin=args.solvent_margin))
        if args.high_noise_factor:
            noise = args.noise * args.high_noise_factor
            rows = []
            for size in args.high_noise_sizes if args.high_noise_sizes is not None else args.sizes:
                rows += bench_size(size, noise, args, baseline_rss, accuracy_only=True)
                print(f"  {size}³ at noise {noise:g}: done (load {loadavg()})", file=sys.stderr, flush=True)
            all_rows += rows
            emit(f"\n## Accuracy at {args.high_noise_factor:g}× the noise (noise {noise:g})\n")
            emit(accuracy_table(rows))
    emit(f"\n`uptime` at end: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")

    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(out) + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.__dict__ for r in all_rows], indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

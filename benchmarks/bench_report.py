"""How much the report (logfile.pdf + occupy.cxc) adds to a job: summarise_class + write_report against
the job's core time, on synthetic classes with known occupancy.

    python benchmarks/bench_report.py                  # 128³, 3 classes (the target: report < 10 %)
    python benchmarks/bench_report.py --sizes 128 256 --repeat 3 --threads 2

Per size, in one process: the classes are made first (not timed), then each repeat times
  * core: measure + normalise + modify_map (equalised) + scale_statistics, every class;
  * core + map I/O: the same plus reading the input map and writing the scale, confidence and
    equalised maps with mrcfile (what the job does besides the report);
  * report: the summary step (report.summary.summarise_class) for every class + write_report
    (5 pages for 3 classes with --joint).
The first report of the process also pays for importing matplotlib ("report, cold"); later repeats
show the steady cost ("report, warm").  Wall and CPU seconds are the median over the repeats; the
machine may be shared, so CPU time is the steadier number.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mrcfile
import numpy as np

from occupy_relion.core import (
    ModifyParameters,
    ScaleParameters,
    measure,
    modify_map,
    molecule_scale,
    normalise,
    scale_statistics,
)
from occupy_relion.synthetic import noisy_map

OCCUPANCIES = ((1.0, 1.0, 1.0), (1.0, 0.5, 0.25), (1.0, 1.0, 0.0), (0.5, 1.0, 1.0), (1.0, 0.25, 1.0))


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def write_map(path: Path, data: np.ndarray, pixel_size: float) -> None:
    with mrcfile.new(path, overwrite=True) as handle:
        handle.set_data(np.asarray(data, np.float32))
        handle.voxel_size = pixel_size


def run_classes(project: Path, count: int, threads: int, pixel_size: float, io: bool):
    """Process every class like the job; returns the per-class (volume, estimate, equalised, stats, seconds)."""
    out = []
    for number in range(1, count + 1):
        started = time.perf_counter()
        source = project / f"Class3D/job008/run_it025_class{number:03d}.mrc"
        if io:
            with mrcfile.open(source, permissive=True) as handle:
                volume = np.asarray(handle.data, dtype=np.float32).copy()
        else:
            volume = CACHE[number]
        estimate = normalise(measure(volume, pixel_size, ScaleParameters(), threads=threads))
        equalised = modify_map(volume, estimate, pixel_size, ModifyParameters(), threads=threads)["equalised"]
        stats = scale_statistics(estimate.scale, estimate.confidence)
        if io:
            job = project / "External/job012"
            write_map(job / f"class{number:03d}_scale.mrc", estimate.scale, pixel_size)
            write_map(job / f"class{number:03d}_confidence.mrc", estimate.confidence, pixel_size)
            write_map(job / f"class{number:03d}_equalised.mrc", equalised, pixel_size)
        out.append((number, volume, estimate, equalised, stats, time.perf_counter() - started))
    return out


CACHE: dict[int, np.ndarray] = {}


def report(project: Path, processed, pixel_size: float, joint: bool) -> None:
    """The report's share of a job: the summary step of every class, then write_report."""
    from occupy_relion.relion.version import RelionVersion
    from occupy_relion.report import write_report
    from occupy_relion.report.summary import summarise_class
    from occupy_relion.result import ClassOutputs, ClassResult, MoleculeStatistics, RunDescription

    job = "External/job012/"
    results = []
    for number, volume, estimate, equalised, stats, seconds in processed:
        base = f"{job}class{number:03d}"
        outputs = ClassOutputs(scale=f"{base}_scale.mrc", confidence=f"{base}_confidence.mrc",
                               equalised=f"{base}_equalised.mrc")
        results.append(ClassResult(
            number=number, input_path=f"Class3D/job008/run_it025_class{number:03d}.mrc",
            distribution=1.0 / len(processed), resolution=8.0, pixel_size=pixel_size, outputs=outputs,
            settings=estimate.settings, statistics=MoleculeStatistics(**stats),
            view=summarise_class(volume, estimate, equalised, molecule_scale(estimate.scale, estimate.confidence)),
            seconds=seconds))
    run = RunDescription(input="Class3D/job008/run_it025_data.star", input_kind="Class3D", model_path=None,
                         relion_version=RelionVersion("5.0", "benchmark"), job_dir=job, command_line="",
                         pixel_size=pixel_size, parameters=(("mode", "occupancy"), ("joint", joint)), joint=joint,
                         joint_reference=results[0].settings.reference_value if joint else None)
    write_report(project / job, run, results, project_dir=project)


def bench_size(size: int, classes: int, repeat: int, threads: int, joint: bool) -> list[tuple[str, float, float]]:
    pixel_size = 1.0
    rows: dict[str, list[tuple[float, float]]] = {"core": [], "core + map I/O": [], "report, warm": []}
    cold = None
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        project = Path(tmp)
        (project / "Class3D/job008").mkdir(parents=True)
        (project / "External/job012").mkdir(parents=True)
        CACHE.clear()
        for number in range(1, classes + 1):
            volume, _ = noisy_map((size,) * 3, pixel_size, 0.5, OCCUPANCIES[(number - 1) % len(OCCUPANCIES)],
                                  seed=number)
            CACHE[number] = volume
            write_map(project / f"Class3D/job008/run_it025_class{number:03d}.mrc", volume, pixel_size)
        run_classes(project, 1, threads, pixel_size, io=False)  # warm-up (FFT plans, imports)
        for _ in range(repeat):
            with Clock() as core:
                run_classes(project, classes, threads, pixel_size, io=False)
            rows["core"].append((core.wall, core.cpu))
            with Clock() as job:
                processed = run_classes(project, classes, threads, pixel_size, io=True)
            rows["core + map I/O"].append((job.wall, job.cpu))
            with Clock() as rep:
                report(project, processed, pixel_size, joint)
            if cold is None:
                cold = (rep.wall, rep.cpu)
            else:
                rows["report, warm"].append((rep.wall, rep.cpu))
            del processed
    if not rows["report, warm"]:
        rows["report, warm"].append(cold)
    out = [(name, statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
           for name, values in rows.items()]
    out.insert(2, ("report, cold (imports matplotlib)", cold[0], cold[1]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-joint", dest="joint", action="store_false", help="no comparison page")
    args = parser.parse_args(argv)
    print(f"report cost: {args.classes} classes, threads {args.threads}, joint {args.joint}, "
          f"median of {args.repeat} repeats\n")
    print("| box | step | wall (s) | CPU (s) | report / core (wall) | report / core + I/O (wall) |")
    print("|---|---|---:|---:|---:|---:|")
    for size in args.sizes:
        results = bench_size(size, args.classes, args.repeat, args.threads, args.joint)
        core = dict((name, wall) for name, wall, _ in results)["core"]
        job = dict((name, wall) for name, wall, _ in results)["core + map I/O"]
        for name, wall, cpu in results:
            ratio = f"{100 * wall / core:.0f} %" if name.startswith("report") else ""
            ratio_job = f"{100 * wall / job:.0f} %" if name.startswith("report") else ""
            print(f"| {size}³ | {name} | {wall:.2f} | {cpu:.2f} | {ratio} | {ratio_job} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

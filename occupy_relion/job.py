"""The RELION External job: inputs → local scale of every class → maps, occupancy.star, report, nodes.

RELION runs us from the project directory and appends stdout to ``run.out`` and stderr to
``run.err``.  Every path below is relative to the project directory.  The job ends with exactly one
marker: RELION_JOB_EXIT_SUCCESS (written last, after RELION_OUTPUT_NODES.star), _FAILURE (a bad input:
one line on stderr naming the file and the problem, no node list) or _ABORTED (RELION_JOB_ABORT_NOW
seen between classes or inside the core's long steps; the request file is deleted).

Test hook: the environment variable ``OCCUPY_RELION_CHECK_DELAY`` (seconds) makes every abort check
sleep that long, so a test can abort a job that would otherwise finish in a blink.
"""

from __future__ import annotations

import math
import os
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from .core import (
    MODES,
    MapError,
    ModifyParameters,
    ScaleParameters,
    SolventFitError,
    joint_reference,
    measure,
    modify_map,
    normalise,
    scale_statistics,
)
from .errors import InputError, JobAborted
from .mapio import VOXEL_TOLERANCE, MapHeader, read_header, read_map, write_map
from .relion import markers
from .relion.inputs import ClassInput, Inputs, load_inputs
from .relion.nodes import OutputNode, write_output_nodes
from .relion.summary import SUMMARY_NAME, class_row, general_table, write_summary
from .relion.version import RelionVersion, detect_version

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ABORTED = 2

CHECK_DELAY_VARIABLE = "OCCUPY_RELION_CHECK_DELAY"

#: derived settings that are the same for every class (printed once, in the general table)
SHARED_SETTINGS = ("lowpass_angstrom", "kernel_radius_angstrom", "kernel_voxels", "tau", "tile_angstrom",
                   "working_pixel_angstrom", "working_shape")

#: largest relative difference between the model.star pixel size and the map's before a warning
PIXEL_WARNING = 0.01


def program_version() -> str:
    """The installed version of occupy_relion."""
    try:
        from importlib.metadata import version

        return version("occupy_relion")
    except Exception:
        return "unknown"


@dataclass
class JobOptions:
    """What the command line asked for (already parsed and typed)."""

    output_dir: str
    in_parts: str | None = None
    in_3dref: str | None = None
    in_mask: str | None = None
    model: str | None = None
    # defaults are the core's, so the command line and the Python API cannot drift apart
    mode: str = ScaleParameters.mode
    lowpass: float | None = ScaleParameters.lowpass
    amplify: float = ModifyParameters.amplify
    attenuate: float | None = ModifyParameters.attenuate
    sigmoid: float | None = ModifyParameters.sigmoid
    pivot: float = ModifyParameters.pivot
    scale_limit: float = ModifyParameters.scale_limit
    exclude_solvent: bool = ModifyParameters.exclude_solvent
    joint: bool = False
    threads: int = 1
    relion_version: str | None = None
    ignored: list[str] = field(default_factory=list)  # unknown options (named in a warning)
    command_line: str = ""

    def modify_parameters(self) -> ModifyParameters:
        """The modifications asked for, as the core takes them."""
        return ModifyParameters(amplify=self.amplify, attenuate=self.attenuate, sigmoid=self.sigmoid,
                                pivot=self.pivot, scale_limit=self.scale_limit, exclude_solvent=self.exclude_solvent)

    def parameters(self) -> dict:
        """The user-facing parameters, for occupancy.star and the report."""
        return {
            "mode": self.mode, "lowpass": self.lowpass, "amplify": self.amplify, "attenuate": self.attenuate,
            "sigmoid": self.sigmoid, "pivot": self.pivot, "scale_limit": self.scale_limit,
            "exclude_solvent": self.exclude_solvent, "joint": self.joint, "threads": self.threads,
            "mask": self.in_mask,
        }


def validate_options(options: JobOptions) -> None:
    """Reject parameter values the core cannot use, naming the option."""
    if options.mode not in MODES:
        raise InputError(f"--mode: {options.mode!r} is not one of {', '.join(MODES)}")
    if options.lowpass is not None and not (math.isfinite(options.lowpass) and options.lowpass > 0):
        raise InputError(f"--lowpass: must be a positive resolution in Å, not {options.lowpass:g}")
    for name in ("amplify", "attenuate", "sigmoid"):
        value = getattr(options, name)
        if value is not None and not value >= 1:
            raise InputError(f"--{name}: the power must be at least 1, not {value:g}")
    if not 0 < options.pivot < 1:
        raise InputError(f"--pivot: must be between 0 and 1, not {options.pivot:g}")
    if not 0 < options.scale_limit < 1:
        raise InputError(f"--scale_limit: must be between 0 and 1, not {options.scale_limit:g}")
    if options.threads < 1:
        raise InputError(f"--j: at least 1 thread, not {options.threads}")


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    if isinstance(value, (tuple, list)):
        return "x".join(_fmt(v, digits) for v in value)
    return str(value)


@dataclass
class _ClassResult:
    """What is kept of a processed class (no full maps)."""

    cls: ClassInput
    paths: dict[str, str]
    statistics: dict
    settings: dict
    seconds: float


class _Job:
    """One run of the job; methods are the steps, in order."""

    def __init__(self, options: JobOptions, out: TextIO, err: TextIO):
        self.options = options
        self.out, self.err = out, err
        self.job_dir = Path(options.output_dir)
        name = options.output_dir.replace(os.sep, "/")
        self.node_prefix = name if name.endswith("/") else name + "/"
        if self.node_prefix.startswith("./"):
            self.node_prefix = self.node_prefix[2:]
        self.delay = _check_delay()

    # -- messages ---------------------------------------------------------------------------
    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"WARNING: {text}", file=self.err, flush=True)
        print(f" WARNING: {text}", file=self.out, flush=True)

    def check(self) -> None:
        """Abort check: raises JobAborted when RELION_JOB_ABORT_NOW exists."""
        if self.delay:
            time.sleep(self.delay)
        markers.check_abort(self.job_dir)

    # -- steps ------------------------------------------------------------------------------
    def prepare_directory(self) -> None:
        try:
            self.job_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"{self.job_dir}: cannot create the job directory ({error.strerror or error})") from None
        try:
            markers.clear_stale(self.job_dir)
            fd, probe = tempfile.mkstemp(prefix=".occupy-tmp-", dir=self.job_dir)
            os.close(fd)
            os.unlink(probe)
        except OSError as error:
            raise InputError(f"{self.job_dir}: cannot write in the job directory ({error.strerror or error})") from None

    def out_path(self, name: str) -> tuple[Path, str]:
        """(file path, name relative to the project directory) of an output."""
        return self.job_dir / name, self.node_prefix + name

    def geometry(self, inputs: Inputs, classes: list[ClassInput]) -> tuple[MapHeader, float]:
        """Check all maps share one grid and pixel size; return the first header and the pixel size."""
        first, first_path = None, None
        for cls in classes:
            paths = [cls.map_path] + list(cls.half_maps or ())
            for path in paths:
                header = read_header(path)
                if not header.isotropic:
                    raise InputError(f"{path}: voxel sizes differ between axes {header.voxel_size}")
                if first is None:
                    first, first_path = header, path
                    continue
                if header.shape != first.shape:
                    raise InputError(f"{path}: size {_fmt(header.shape[::-1])} differs from {first_path} "
                                     f"({_fmt(first.shape[::-1])})")
                if abs(header.pixel_size - first.pixel_size) > VOXEL_TOLERANCE * max(first.pixel_size, 1e-12):
                    raise InputError(f"{path}: pixel size {header.pixel_size:g} Å differs from {first_path} "
                                     f"({first.pixel_size:g} Å)")
        pixel_size = first.pixel_size
        if pixel_size <= 0:
            if inputs.pixel_size:
                self.warn(f"{first_path}: no voxel size in the header; using {inputs.pixel_size:g} Å "
                          f"from {inputs.model_path}")
                pixel_size = inputs.pixel_size
            else:
                raise InputError(f"{first_path}: no voxel size in the header")
        elif inputs.pixel_size and abs(inputs.pixel_size - pixel_size) > PIXEL_WARNING * pixel_size:
            self.warn(f"{first_path}: voxel size {pixel_size:g} Å differs from _rlnPixelSize "
                      f"{inputs.pixel_size:g} Å of {inputs.model_path}; using the map's")
        return first, pixel_size

    def read_mask(self, header: MapHeader, pixel_size: float) -> np.ndarray | None:
        path = self.options.in_mask
        if not path:
            return None
        mask, mask_header = read_map(path)
        if mask.shape != header.shape:
            raise InputError(f"{path}: mask size {_fmt(mask.shape[::-1])} differs from the maps' "
                             f"{_fmt(header.shape[::-1])}")
        if mask_header.pixel_size > 0 and abs(mask_header.pixel_size - pixel_size) > PIXEL_WARNING * pixel_size:
            raise InputError(f"{path}: mask pixel size {mask_header.pixel_size:g} Å differs from the maps' "
                             f"{pixel_size:g} Å")
        if not mask.max() > 0:
            raise InputError(f"{path}: the mask is empty (no value above 0)")
        return mask

    def load_class(self, cls: ClassInput, with_noise: bool = True) -> tuple[np.ndarray, np.ndarray | None, MapHeader]:
        """The map to analyse, a pure-noise map from the half maps (or None), and the map's header."""
        if cls.average_halves and cls.half_maps:
            half1, header = read_map(cls.half_maps[0])
            half2, _ = read_map(cls.half_maps[1])
            noise = (half1 - half2) * np.float32(0.5) if with_noise else None
            half1 += half2
            half1 *= np.float32(0.5)
            if noise is not None and not noise.max() > noise.min():
                noise = None
            return half1, noise, header
        volume, header = read_map(cls.map_path)
        noise = None
        if cls.half_maps and with_noise:
            half1, _ = read_map(cls.half_maps[0])
            half2, _ = read_map(cls.half_maps[1])
            half1 -= half2
            half1 *= np.float32(0.5)
            noise = half1
        if noise is not None and not noise.max() > noise.min():
            self.warn(f"{cls.half_maps[0]}: the two half maps are identical, so they say nothing about the "
                      "noise; using the map's own solvent")
            noise = None
        return volume, noise, header

    def write_class(self, cls: ClassInput, volume: np.ndarray, estimate, header: MapHeader,
                    pixel_size: float, seconds_so_far: float, started: float) -> tuple[_ClassResult, object]:
        """Modify, write every map of one class, summarise it for the report."""
        from .report import summarise_class

        o = self.options
        modify = o.modify_parameters()
        maps = modify_map(volume, estimate, pixel_size, modify, threads=o.threads, check=self.check)
        self.check()
        base = f"class{cls.number:03d}"
        written: dict[str, str] = {}
        for kind, array in (("scale", estimate.scale), ("confidence", estimate.confidence),
                            *((name, maps[name]) for name in ("equalised", "attenuated", "sigmoid") if name in maps)):
            path, name = self.out_path(f"{base}_{kind}.mrc")
            write_map(path, array, header, label=f"occupy_relion {kind} of {cls.map_path}"[:80])
            written[kind] = name
        statistics = scale_statistics(estimate.scale, estimate.confidence)
        seconds = seconds_so_far + (time.perf_counter() - started)
        summary = summarise_class(
            cls.number, volume, estimate, maps["equalised"], statistics,
            input_path=cls.map_path, scale_path=written["scale"], confidence_path=written["confidence"],
            equalised_path=written["equalised"], distribution=cls.distribution, resolution=cls.resolution,
            pixel_size=pixel_size, seconds=seconds,
        )
        return _ClassResult(cls, written, statistics, dict(estimate.settings), seconds), summary

    def empty_reason(self, cls: ClassInput) -> str | None:
        if cls.distribution is not None and cls.distribution <= 0:
            return "no particles (_rlnClassDistribution 0)"
        return None

    def measure_class(self, cls: ClassInput, pixel_size: float, parameters: ScaleParameters,
                      mask: np.ndarray | None):
        """(volume, header, measurement) of one class, or None with a warning when its map is empty."""
        volume, noise, header = self.load_class(cls)
        if not volume.any():
            self.warn(f"{cls.map_path}: class {cls.number} map is all zeros (empty class); skipped")
            return None
        if not volume.max() > volume.min():
            self.warn(f"{cls.map_path}: class {cls.number} map is constant (empty class); skipped")
            return None
        self.check()
        try:
            measurement = measure(volume, pixel_size, parameters, mask=mask, noise=noise,
                                  threads=self.options.threads, check=self.check)
        except (MapError, SolventFitError) as error:
            raise InputError(f"{cls.map_path}: {error}") from None
        return volume, header, measurement

    def normalise_class(self, cls: ClassInput, measurement, reference: float | None = None):
        """Scale and confidence of one measured class (own or joint reference)."""
        try:
            return normalise(measurement, reference, threads=self.options.threads)
        except MapError as error:
            raise InputError(f"{cls.map_path}: {error}") from None

    def class_line(self, result: _ClassResult) -> str:
        s, st = result.settings, result.statistics
        return (f" class {result.cls.number:03d} done in {result.seconds:.1f} s: scale in the molecule median "
                f"{st['scale_median']:.2f} (5-95%: {st['scale_p05']:.2f}-{st['scale_p95']:.2f}), "
                f"{100 * st['partial_fraction']:.0f}% below 0.5; solvent {_fmt(s.get('solvent_mean'))} "
                f"± {_fmt(s.get('solvent_sd'))} ({s.get('solvent_region')}), noise floor "
                f"{_fmt(s.get('noise_floor'))} ({s.get('noise_floor_source')}), reference "
                f"{_fmt(s.get('reference_value'))}")

    def run(self) -> int:
        o = self.options
        started = time.perf_counter()
        self.prepare_directory()
        self.say(f"occupy_relion {program_version()}: local scale (relative occupancy) of every class")
        if o.command_line:
            self.say(f" command: {o.command_line}")
        if o.ignored:
            self.warn(f"ignoring unknown options: {' '.join(o.ignored)}")
        validate_options(o)
        version = detect_version(".", o.relion_version)
        self.say(f" RELION version: {version.version} (from {version.source})")
        inputs = load_inputs(o.model, o.in_parts, o.in_3dref)
        self.say(f" input: {inputs.source}")
        count = len(inputs.classes)
        if inputs.kind == "MultiBody":
            noun = "body" if count == 1 else "bodies"
        else:
            noun = "class" if count == 1 else "classes"
        self.say(f" {inputs.kind}: {count} {noun}")

        skipped: list[int] = []
        active: list[ClassInput] = []
        for cls in inputs.classes:
            reason = self.empty_reason(cls)
            if reason:
                self.warn(f"class {cls.number} ({cls.map_path}): {reason}; skipped")
                skipped.append(cls.number)
            else:
                active.append(cls)
        if not active:
            raise InputError(f"{inputs.model_path or inputs.source}: every class is empty, nothing to analyse")
        header, pixel_size = self.geometry(inputs, active)
        self.say(f" maps: {_fmt(header.shape[::-1])} voxels of {pixel_size:g} Å")
        for cls in active:
            extra = ""
            if cls.half_maps:
                extra = (" (mean of both halves; noise from their difference)" if cls.average_halves
                         else f" (noise from half maps {cls.half_maps[0]}, {cls.half_maps[1]})")
            self.say(f" class {cls.number:03d}: {cls.map_path}  distribution {_fmt(cls.distribution)}, "
                     f"resolution {_fmt(cls.resolution)} Å{extra}")
        mask = self.read_mask(header, pixel_size)
        if mask is not None:
            self.say(f" solvent mask: {o.in_mask}")
        parameters = ScaleParameters(mode=o.mode, lowpass=o.lowpass)
        try:
            resolved = parameters.resolved(pixel_size)
        except ValueError as error:
            raise InputError(f"--lowpass: {error}") from None
        self.say(f" settings: mode {resolved.mode}, low-pass {resolved.lowpass:g} Å, kernel radius "
                 f"{resolved.kernel_radius:g} Å, reference tile {resolved.tile:g} Å, amplify {o.amplify:g}"
                 + (f", attenuate {o.attenuate:g}" if o.attenuate is not None else "")
                 + (f", sigmoid {o.sigmoid:g} (pivot {o.pivot:g})" if o.sigmoid is not None else "")
                 + f", scale limit {o.scale_limit:g}, exclude solvent {'yes' if o.exclude_solvent else 'no'}"
                 + f", joint {'yes' if o.joint else 'no'}, threads {o.threads}")

        process = self.process_jointly if o.joint else self.process_separately
        results, summaries, reference = process(active, pixel_size, parameters, mask, skipped)
        if not results:
            raise InputError(f"{inputs.model_path or inputs.source}: every class is empty, nothing to analyse")
        self.check()

        summary_path, summary_name = self.out_path(SUMMARY_NAME)
        self.write_summary(summary_path, inputs, version, results, sorted(skipped), pixel_size, reference)
        self.say(f" wrote {summary_name}")
        report_paths = self.write_report(inputs, version, summaries, resolved, pixel_size, reference)
        self.check()
        self.write_nodes(results, summary_name, report_paths, version)
        markers.mark_success(self.job_dir)
        self.say(f" done: {len(results)} {'class' if len(results) == 1 else 'classes'} in "
                 f"{time.perf_counter() - started:.1f} s"
                 + (f" ({len(skipped)} skipped: {', '.join(str(n) for n in sorted(skipped))})" if skipped else ""))
        return EXIT_OK

    def finish_class(self, cls: ClassInput, volume: np.ndarray, estimate, header: MapHeader, pixel_size: float,
                     seconds_so_far: float, started: float, results: list, summaries: list) -> None:
        """Write one normalised class, keep its summary, print its line."""
        result, summary = self.write_class(cls, volume, estimate, header, pixel_size, seconds_so_far, started)
        if not results:
            self.print_settings(result.settings)
        results.append(result)
        summaries.append(summary)
        self.say(self.class_line(result))

    def process_separately(self, active: list[ClassInput], pixel_size: float, parameters: ScaleParameters,
                           mask: np.ndarray | None, skipped: list[int]) -> tuple[list, list, None]:
        """Each class normalised by its own full-occupancy reference, one class at a time."""
        results: list[_ClassResult] = []
        summaries: list = []
        for cls in active:
            self.check()
            started = time.perf_counter()
            measured = self.measure_class(cls, pixel_size, parameters, mask)
            if measured is None:
                skipped.append(cls.number)
                continue
            volume, header, measurement = measured
            del measured
            estimate = self.normalise_class(cls, measurement)
            del measurement
            self.finish_class(cls, volume, estimate, header, pixel_size, 0.0, started, results, summaries)
        return results, summaries, None

    def process_jointly(self, active: list[ClassInput], pixel_size: float, parameters: ScaleParameters,
                        mask: np.ndarray | None, skipped: list[int]) -> tuple[list, list, float | None]:
        """Measure every class, then normalise all by one common reference (scales compare across classes).

        Only the measurements (working grid) are kept between the passes; maps are read again.
        """
        measured = []
        for cls in active:
            self.check()
            started = time.perf_counter()
            got = self.measure_class(cls, pixel_size, parameters, mask)
            if got is None:
                skipped.append(cls.number)
                continue
            measurement = got[2]
            del got
            seconds = time.perf_counter() - started
            measured.append((cls, measurement, seconds))
            self.say(f" class {cls.number:03d} measured in {seconds:.1f} s (own reference {measurement.reference:.4g})")
        if not measured:
            return [], [], None
        reference = joint_reference([m for _, m, _ in measured])
        self.say(f" joint reference: {reference:.4g} (largest of the classes' own references)")
        results: list[_ClassResult] = []
        summaries: list = []
        while measured:
            cls, measurement, seconds = measured.pop(0)
            self.check()
            started = time.perf_counter()
            estimate = self.normalise_class(cls, measurement, reference)
            del measurement
            volume, _, header = self.load_class(cls, with_noise=False)
            self.finish_class(cls, volume, estimate, header, pixel_size, seconds, started, results, summaries)
        return results, summaries, reference

    def write_nodes(self, results: list[_ClassResult], summary_name: str, report_paths: list,
                    version: RelionVersion) -> None:
        """RELION_OUTPUT_NODES.star: modified maps, scale maps, occupancy.star, the PDF if it was written now."""
        nodes = []
        for result in results:
            for kind in ("equalised", "attenuated", "sigmoid"):
                if kind in result.paths:
                    nodes.append(OutputNode(result.paths[kind], "map"))
            nodes.append(OutputNode(result.paths["scale"], "localres"))
        nodes.append(OutputNode(summary_name, "process"))
        pdf = self.job_dir / "logfile.pdf"
        if any(Path(p).name == "logfile.pdf" for p in report_paths) and pdf.exists():
            nodes.append(OutputNode(self.out_path("logfile.pdf")[1], "logfile"))
        write_output_nodes(self.job_dir, nodes, None if version.assumed else version.version)

    def print_settings(self, settings: dict) -> None:
        shown = ", ".join(f"{name} {_fmt(settings[name])}" for name in SHARED_SETTINGS if name in settings)
        self.say(f" derived settings: {shown}")

    def shared_settings(self, results: list[_ClassResult]) -> dict:
        first = results[0].settings
        return {name: first[name] for name in SHARED_SETTINGS if name in first}

    def write_summary(self, path: Path, inputs: Inputs, version: RelionVersion, results: list[_ClassResult],
                      skipped: list[int], pixel_size: float, reference: float | None) -> None:
        general = general_table(
            input_description=inputs.source, input_kind=inputs.kind, model_path=inputs.model_path,
            relion_version=version.version, relion_version_source=version.source,
            class_count=len(inputs.classes), processed=[r.cls.number for r in results], skipped=skipped,
            pixel_size=pixel_size, parameters=self.options.parameters(), settings=self.shared_settings(results),
            joint_reference=reference, program_version=program_version(),
        )
        rows = []
        for r in results:
            extra = {kind: r.paths[kind] for kind in ("attenuated", "sigmoid") if kind in r.paths}
            distribution = r.cls.distribution
            rows.append(class_row(
                number=r.cls.number, equalised_path=r.paths["equalised"], distribution=distribution,
                resolution=r.cls.resolution, input_path=r.cls.map_path, scale_path=r.paths["scale"],
                confidence_path=r.paths["confidence"], extra_paths=extra, statistics=r.statistics,
                settings=r.settings, seconds=r.seconds,
            ))
        write_summary(path, general, rows)

    def write_report(self, inputs: Inputs, version: RelionVersion, summaries: list, resolved: ScaleParameters,
                     pixel_size: float, reference: float | None) -> list:
        """logfile.pdf and occupy.cxc; a failure here is a warning, the maps are the job's result."""
        from .report import write_report

        o = self.options
        run_info = {
            "Input": inputs.source,
            "Input type": inputs.kind,
            "Model star": inputs.model_path or "-",
            "RELION version": f"{version.version} ({version.source})",
            "Job directory": self.node_prefix,
            "Command line": o.command_line or "-",
            "Pixel size (Å)": pixel_size,
            "Parameters": {
                "Mode": o.mode, "Low-pass (Å)": resolved.lowpass, "Kernel radius (Å)": resolved.kernel_radius,
                "Reference tile (Å)": resolved.tile, "Amplify γ": o.amplify,
                "Attenuate γ": o.attenuate if o.attenuate is not None else "-",
                "Sigmoid γ": o.sigmoid if o.sigmoid is not None else "-", "Pivot": o.pivot,
                "Scale limit": o.scale_limit, "Exclude solvent": "yes" if o.exclude_solvent else "no",
                "Joint normalisation": "yes" if o.joint else "no", "Solvent mask": o.in_mask or "-",
                "Threads": o.threads,
            },
        }
        if reference is not None:
            run_info["Joint reference"] = reference
        try:
            paths = write_report(self.job_dir, run_info, summaries, o.joint)
        except JobAborted:
            raise
        except Exception as error:  # the report is a bonus: never fail the job for it
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.warn(f"report not written ({type(error).__name__}: {message})")
            return []
        paths = [Path(p) for p in (paths or [])]
        if paths:
            self.say(" wrote " + ", ".join(self.out_path(p.name)[1] for p in paths))
        return paths


def _check_delay() -> float:
    value = os.environ.get(CHECK_DELAY_VARIABLE, "")
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    if isinstance(error, OSError) and error.filename:
        text = f"{error.filename}: {error.strerror or text}"
    return " ".join(text.split()) or type(error).__name__


def run_job(options: JobOptions, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the job; return the exit code (0 success, 1 failed, 2 aborted).  Never raises for bad input."""
    out = out or sys.stdout
    err = err or sys.stderr
    job = _Job(options, out, err)
    try:
        return job.run()
    except (JobAborted, KeyboardInterrupt) as error:
        reason = str(error) or "interrupted"
        try:
            markers.mark_aborted(job.job_dir)
        except OSError:
            pass
        print(f" aborted ({reason}); wrote {markers.ABORTED}", file=out, flush=True)
        print(f"occupy_relion: aborted ({reason})", file=err, flush=True)
        return EXIT_ABORTED
    except InputError as error:
        print(f"ERROR: {_one_line(error)}", file=err, flush=True)
    except OSError as error:
        print(f"ERROR: {_one_line(error)}", file=err, flush=True)
    except MemoryError:
        print("ERROR: out of memory (try fewer threads, or a larger --lowpass)", file=err, flush=True)
    except Exception as error:  # a bug: say so in one line, then the traceback for the report
        print(f"ERROR: unexpected {type(error).__name__}: {_one_line(error)}", file=err, flush=True)
        traceback.print_exc(file=err)
    if not markers.mark_failure(job.job_dir):
        print(f"ERROR: could not write {markers.FAILURE} in {job.job_dir}", file=err, flush=True)
    print(" failed (see run.err)", file=out, flush=True)
    return EXIT_FAILED


def fail_early(output_dir: str | None, message: str, err: TextIO | None = None) -> int:
    """A failure before the job could start (bad command line): error line, and FAILURE if we can."""
    err = err or sys.stderr
    print(f"ERROR: {' '.join(message.split())}", file=err, flush=True)
    if output_dir and Path(output_dir).is_dir():
        try:
            markers.clear_stale(output_dir)
        except OSError:
            pass
        markers.mark_failure(output_dir)
    return EXIT_FAILED


def command_line(argv: list[str]) -> str:
    """The command as a shell would show it (for run.out and the report)."""
    return " ".join(shlex.quote(a) for a in ["occupy_relion", *argv])

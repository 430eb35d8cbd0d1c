"""run.out and run.err: what the job tells a person, and where it goes.

RELION appends the job's stdout to ``run.out`` and its stderr to ``run.err`` in the job directory.
Run from a shell (or a script) the streams go elsewhere, so the log also appends every line to those
files itself, unless a stream already is that file (RELION's redirection): the job directory then
holds the same record however the job was started.  Every line text is made here.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from ..core import ScaleParameters
from ..relion.inputs import ClassInput, Inputs
from ..relion.version import RelionVersion
from ..result import SHARED_SETTINGS, ClassResult, RegionsResult
from ..text import fmt, size_text
from .grid import Grid
from .memory import MemoryEstimate, memory_line, short_warning
from .options import JobOptions, program_version

RUN_OUT = "run.out"
RUN_ERR = "run.err"


def _is_file(stream: TextIO, path: Path) -> bool:
    """Whether ``stream`` writes to ``path`` (RELION's ``>> run.out``)."""
    try:
        written, target = os.fstat(stream.fileno()), path.stat()
    except (OSError, ValueError, AttributeError):  # no such file yet, or a stream without a descriptor
        return False
    return (written.st_dev, written.st_ino) == (target.st_dev, target.st_ino)


def _to_null(stream: TextIO) -> None:
    """Point ``stream``'s descriptor at /dev/null (its buffered bytes then flush without an error)."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, stream.fileno())
        finally:
            os.close(null)
        stream.flush()
    except (OSError, ValueError, AttributeError):  # no descriptor (a test's StringIO), or it still fails
        pass


#: the steps the profile line names, in order
PROFILE_STEPS = ("read", "estimate", "modify", "write", "regions", "report")


class Profile:
    """Seconds spent in each step of a run (summed over the classes, which may run at once)."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as part of step ``name``."""
        started = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - started

    def line(self) -> str:
        """``read 0.4 s, estimate 0.8 s, ...`` (steps not run are left out)."""
        return ", ".join(f"{name} {self._seconds[name]:.2f} s" for name in PROFILE_STEPS if name in self._seconds)


class JobLog:
    """Lines to stdout (run.out) and stderr (run.err), also appended to the job directory's files."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None):
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._copies: dict[str, TextIO] = {}
        self._warned: set[str] = set()
        self.memory_estimate: MemoryEstimate | None = None  # said by memory(); named again if memory runs out
        self.profile = Profile()  # said by done()

    def keep_in(self, job_dir: Path) -> None:
        """From now on also append to ``job_dir``/run.out and run.err (unless the streams already are them)."""
        for name, stream in ((RUN_OUT, self.out), (RUN_ERR, self.err)):
            path = job_dir / name
            if name not in self._copies and not _is_file(stream, path):
                self._copies[name] = open(path, "a", encoding="utf-8")  # closed by close()

    def close(self) -> None:
        """Close the copies in the job directory; a stream that still cannot be written (a full disk)
        is pointed at /dev/null, so its unwritten lines do not turn the exit code into Python's 120."""
        for handle in self._copies.values():
            try:
                handle.close()
            except OSError:  # closed all the same; the unwritten lines are lost
                pass
        self._copies.clear()
        for stream in (self.out, self.err):
            try:
                stream.flush()
            except OSError:
                _to_null(stream)

    def _write(self, name: str, stream: TextIO, text: str) -> None:
        """Write a line to the stream and the job directory's copy.  A line that cannot be written (a
        full disk) stays in the stream's buffer for the next write and the job goes on to its marker."""
        for target in (stream, self._copies.get(name)):
            if target is not None:
                try:
                    print(text, file=target, flush=True)
                except OSError:
                    pass

    def say(self, text: str) -> None:
        """A line of run.out."""
        self._write(RUN_OUT, self.out, text)

    def error(self, text: str) -> None:
        """A line of run.err."""
        self._write(RUN_ERR, self.err, text)

    def warn(self, text: str) -> None:
        """A warning: in run.err, and in run.out where it happened (each text once per run)."""
        if text in self._warned:
            return
        self._warned.add(text)
        self.error(f"WARNING: {text}")
        self.say(f" WARNING: {text}")

    # -- the lines of a run, in order ---------------------------------------------------------------
    def start(self, options: JobOptions) -> None:
        """The program, the command and the options it did not know."""
        self.say(f"occupy_relion {program_version()}: local scale (relative occupancy) of every class")
        if options.command_line:
            self.say(f" command: {options.command_line}")
        if options.ignored:
            self.warn(f"ignoring unknown options: {' '.join(options.ignored)}")

    def version(self, version: RelionVersion) -> None:
        """Which RELION the outputs are for, and how that is known."""
        self.say(f" RELION version: {version.version} (from {version.source})")

    def inputs(self, inputs: Inputs) -> None:
        """What was read and how many classes (or bodies) it has."""
        self.say(f" input: {inputs.source}")
        count = len(inputs.classes)
        if inputs.kind == "MultiBody":
            noun = "body" if count == 1 else "bodies"
        else:
            noun = "class" if count == 1 else "classes"
        self.say(f" {inputs.kind}: {count} {noun}")

    def classes(self, grid: Grid, classes: list[ClassInput]) -> None:
        """The maps' grid and one line per class to analyse."""
        self.say(f" maps: {size_text(grid.shape)} voxels of {grid.pixel_size:g} Å")
        for cls in classes:
            extra = ""
            if cls.half_maps:
                extra = (" (mean of both halves; noise from their difference)" if cls.average_halves
                         else f" (noise from half maps {cls.half_maps[0]}, {cls.half_maps[1]})")
            self.say(f" class {cls.number:03d}: {cls.map_path}  distribution {fmt(cls.distribution, 3)}, "
                     f"resolution {fmt(cls.resolution, 3)} Å{extra}")

    def settings(self, options: JobOptions, resolved: ScaleParameters) -> None:
        """The parameters as they will be used."""
        o = options
        self.say(f" settings: mode {resolved.mode}, low-pass {resolved.lowpass:g} Å, kernel radius "
                 f"{resolved.kernel_radius:g} Å, reference tile {resolved.tile:g} Å, amplify {o.amplify:g}"
                 + (f", attenuate {o.attenuate:g}" if o.attenuate is not None else "")
                 + (f", sigmoid {o.sigmoid:g} (pivot {o.pivot:g})" if o.sigmoid is not None else "")
                 + f", scale limit {o.scale_limit:g}, maximum gain {o.max_gain:g}"
                 + f", exclude solvent {fmt(o.exclude_solvent)}, joint {fmt(o.joint)}, threads {o.threads}")

    def memory(self, estimate: MemoryEstimate) -> None:
        """What the run will need (and a warning when less is available)."""
        self.memory_estimate = estimate
        self.say(memory_line(estimate))
        if estimate.short:
            self.warn(short_warning(estimate))

    def parallel(self, classes: int, threads: int) -> None:
        """How the classes share the threads (said only when several run at once)."""
        if classes > 1:
            self.say(f" classes: {classes} at a time, {max(1, threads // classes)} "
                     f"thread{'s' if threads // classes > 1 else ''} each")

    def report_page(self, page: str) -> None:
        """A page of logfile.pdf drawn (by the report's background process)."""
        self.say(f" report: {page} drawn")

    def class_done(self, result: ClassResult, first: bool) -> None:
        """One line per class (after the settings every class shares, with the first)."""
        s, st = result.settings, result.statistics
        if first:
            shown = ", ".join(f"{name} {_setting_text(getattr(s, name))}" for name in SHARED_SETTINGS)
            self.say(f" derived settings: {shown}")
        scale = (f"own scale over its molecule, edges included, median {st.scale_median:.2f} (5-95%: "
                 f"{st.scale_p05:.2f}-{st.scale_p95:.2f}), {100 * st.partial_fraction:.0f}% below 0.5"
                 if result.measurable else s.measurability.label)
        self.say(f" class {result.number:03d} done in {result.seconds:.1f} s: {scale}; solvent "
                 f"{fmt(s.solvent_mean, 3)} ± {fmt(s.solvent_sd, 3)} ({s.solvent_region.label}), noise floor "
                 f"{fmt(s.noise_floor, 3)} ({s.noise_floor_source.label}), reference {fmt(s.reference_value, 3)}"
                 + (f"; {100 * s.no_data_fraction:.0f}% of the box has no data (masked or flattened)"
                    if s.no_data_fraction >= 0.001 else ""))
        for warning in s.warnings:  # one WARNING line each (also in the report)
            self.warn(f"class {result.number:03d}: {warning}")
        if result.measurable:
            low, high = s.noise_floor_spread
            self.say(f"   noise floor {fmt(s.noise_floor, 3)} (local: 5-95% of the box {low:.2f}-{high:.2f} × it): "
                     f"{s.noise_floor_reason}")

    def class_measured(self, number: int, seconds: float, reference: float) -> None:
        """--joint: a class measured against its own reference (normalised later)."""
        self.say(f" class {number:03d} measured in {seconds:.1f} s (own reference {reference:.4g})")

    def joint_reference(self, reference: float) -> None:
        """--joint: the one reference of every class."""
        self.say(f" joint reference: {reference:.4g} (largest of the classes' own references)")

    def regions(self, found: RegionsResult) -> None:
        """The regions × classes table (edge-free occupancy on the common reference), then one
        edge-free line per class, most complete first, and the masks written."""
        analysis = found.analysis
        count = len(analysis.regions)
        if len(analysis.classes) == 1:
            kind = "partial region" if count == 1 else "partial regions"
        elif count == 1:
            kind = "region that differs between classes or is partial in every class"
        else:
            kind = "regions that differ between classes or are partial in every class"
        self.say(f" regions: {count} {kind} (occupancy 0-1, edge-free, on one common reference); consensus "
                 f"molecule {analysis.molecule_volume_A3:.0f} Å³")
        for line in region_table(found):
            self.say("  " + line)
        if analysis.weak_volume_A3 > 0:
            from ..regions.analysis import ABSENT_STATE

            self.say(f"  left out: {analysis.weak_volume_A3:.0f} Å³ of weak density (below {ABSENT_STATE:g} of "
                     "full in every class: noise or a faint fringe), neither a region nor part of the molecule")
        if analysis.scattered_volume_A3 > 0:
            self.say(f"  left out: {analysis.scattered_volume_A3:.0f} Å³ of scattered blobs (many small pieces, no "
                     "body of molecule: noise that passed the confidence), neither a region nor part of the molecule")
        for c in sorted(analysis.completeness, key=lambda c: c.rank):
            self.say(f" class {c.class_number:03d}: completeness {c.completeness:.3f} (rank {c.rank}); edge-free "
                     f"occupancy median {c.median:.2f}, {100 * c.partial_fraction:.0f}% below 0.5")
        masks = ([found.variable_mask] if found.variable_mask else []) + list(found.region_masks)
        self.wrote(masks + [path for _, path in found.occupancy_maps])

    def wrote(self, names: list[str]) -> None:
        """Files written (project-relative names)."""
        if names:
            self.say(" wrote " + ", ".join(names))

    def done(self, processed: int, skipped: list[int], seconds: float) -> None:
        """The last lines of a successful run: where the time went, then how many classes."""
        self.say(f" profile: {self.profile.line()} (classes summed)")
        self.say(f" done: {processed} {'class' if processed == 1 else 'classes'} in {seconds:.1f} s"
                 + (f" ({len(skipped)} skipped: {', '.join(str(n) for n in skipped)})" if skipped else ""))


def region_table(found: RegionsResult) -> list[str]:
    """The regions × classes table as text lines (a header, then one line per region)."""
    analysis = found.analysis
    if not analysis.regions:
        return ["(no region: the occupancy is the same in every class)" if len(analysis.classes) > 1
                else "(no partial region)"]
    head = f"{'region':>6} {'volume Å³':>10} {'centre x, y, z Å':>20}" + "".join(
        f" {'class ' + str(n):>8}" for n in analysis.classes) + "  description"
    lines = [head]
    for region in analysis.regions:
        centre = ", ".join(f"{v:.0f}" for v in region.centre_A)
        lines.append(f"{region.number:>6} {region.volume_A3:>10.0f} {centre:>20}"
                     + "".join(f" {v:>8.2f}" for v in region.occupancy) + f"  {region.description}")
    return lines


def _setting_text(value: object) -> str:
    """A shared setting in run.out: three digits; a grid as 85x85x85."""
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return "x".join(str(v) for v in value)
    return fmt(value, 3)


@contextmanager
def warnings_as_lines(log: JobLog) -> Iterator[None]:
    """Python warnings raised during the run (a map's trailing bytes, numpy's) become one WARNING line
    each in run.err, never the interpreter's two-line form."""
    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001 (warnings API)
        text = " ".join(str(message).split())
        log.warn(text if category is not RuntimeWarning or ":" in text else f"numerical warning: {text}")

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield

"""Everything the job writes into its directory: maps, occupancy.star, the report, the node list.

Names are project-relative as RELION wants them (``External/job012/class001_scale.mrc``); every
file is written atomically (``atomic.py``), so a reader never sees half of one.

Outputs are staged (docs/faults.md): every writer asks :meth:`JobDirectory.output_path` for the
place of a file and writes it there, inside the hidden ``.occupy-staging/`` of the job directory.
Only when every map and table of the run is complete does :func:`publish` move the whole set to
its final names (after writing the list of them, ``.occupy-outputs``); then the report is drawn,
then RELION_OUTPUT_NODES.star, then RELION_JOB_EXIT_SUCCESS.  A run that fails or is aborted calls
:func:`discard`: the staging area, this run's published files and the previous run's outputs go,
so a Failed or Aborted job directory holds only its logs and its marker.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..atomic import TEMP_PREFIX, write_text
from ..core import ModifyParameters, ScaleParameters
from ..errors import InputError, JobAborted, first_line
from ..mapio import MapHeader, write_map
from ..relion import markers
from ..relion.inputs import Inputs
from ..relion.nodes import OutputNode, write_output_nodes
from ..relion.summary import (
    SUMMARY_NAME,
    class_row,
    general_table,
    meanings,
    region_rows,
    region_tables,
    regions_general,
    write_summary,
)
from ..relion.version import RelionVersion
from ..report import LOGFILE_NAME, SCRIPT_NAME
from ..result import SHARED_SETTINGS, ClassOutputs, ClassResult, RegionsResult, RunDescription
from .options import JobOptions, program_version


@dataclass(frozen=True)
class JobDirectory:
    """The job directory on disk and the prefix RELION names its files with."""

    path: Path
    prefix: str  # e.g. "External/job012/": relative to the project directory, with a trailing slash

    @classmethod
    def of(cls, output_dir: str) -> JobDirectory:
        """The job directory of ``--o`` (RELION passes it with a trailing slash; a user may not)."""
        name = output_dir.replace(os.sep, "/")
        prefix = name if name.endswith("/") else name + "/"
        return cls(Path(output_dir), prefix[2:] if prefix.startswith("./") else prefix)

    def name(self, file: str) -> str:
        """A file of the job as RELION names it."""
        return self.prefix + file

    @property
    def staging(self) -> Path:
        """The hidden directory this run's outputs are written into before :func:`publish`."""
        return self.path / STAGING_NAME

    def output_path(self, file: str) -> Path:
        """Where a writer writes the output that becomes ``file`` of the job (a name inside the job
        directory, e.g. ``class001_scale.mrc`` or ``regions/region01.mrc``): in the staging area.

        Every output of a run goes through here; :func:`publish` moves them all to ``self.path / file``.
        """
        relative = Path(file)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"an output of the job must be a name inside the job directory, not {file!r}")
        path = self.staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


#: the staging area (inside the job directory, so the final move is a rename on one file system)
STAGING_NAME = ".occupy-staging"
#: the job-directory names of the outputs the last run published (one a line), for a re-run to replace
MANIFEST_NAME = ".occupy-outputs"


def prepare(job: JobDirectory) -> None:
    """Remove the markers, node list and leftovers (temporary files, staging) of an earlier run; check
    the directory can be written in.  The directory exists and this run holds its lock."""
    nodes = job.path / markers.OUTPUT_NODES
    if nodes.is_dir():
        raise InputError(f"{nodes}: is a directory; RELION reads the job's node list from this name "
                         "(remove the directory, then run the job again)")
    try:
        _adopt_unlisted_outputs(job)
        markers.clear_stale(job.path)
        shutil.rmtree(job.staging, ignore_errors=True)
        fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=job.path)
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise InputError(f"{job.path}: cannot write in the job directory ({error.strerror or error})") from None


#: outputs every successful run has (found by name when a run of an earlier version left no list)
_FIXED_OUTPUTS = (SUMMARY_NAME, LOGFILE_NAME, SCRIPT_NAME)


def _adopt_unlisted_outputs(job: JobDirectory) -> None:
    """When an earlier run left outputs but no list of them (a version before the list), list what its
    node list registered and the fixed names, so this run replaces or removes them like its own."""
    if (job.path / MANIFEST_NAME).exists():
        return
    names = [name for name in _FIXED_OUTPUTS if (job.path / name).is_file()]
    try:
        words = (job.path / markers.OUTPUT_NODES).read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        words = []
    inside = [w[len(job.prefix):] for w in words if w.startswith(job.prefix)]
    names += [name for name in inside if (job.path / name).is_file()]
    if names:
        record(job, names)


def _staged(job: JobDirectory) -> list[str]:
    """The files in the staging area, as names inside the job directory (sorted; temporary files left out)."""
    if not job.staging.is_dir():
        return []
    names = []
    for path in job.staging.rglob("*"):
        if path.is_file() and not path.name.startswith(TEMP_PREFIX):
            names.append(path.relative_to(job.staging).as_posix())
    return sorted(names)


def _manifest(job: JobDirectory) -> list[str]:
    """The outputs an earlier run published (none when it never did)."""
    try:
        text = (job.path / MANIFEST_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [line for line in text.splitlines()
            if line and ".." not in Path(line).parts and not Path(line).is_absolute()]


def _remove(job: JobDirectory, names: list[str]) -> None:
    """Remove these outputs of the job directory (and directories they leave empty); errors ignored."""
    for name in names:
        path = job.path / name
        try:
            if path.is_file() or path.is_symlink():
                path.unlink()
        except OSError:
            continue
        parent = path.parent
        while parent != job.path and job.path in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def record(job: JobDirectory, names: list[str]) -> None:
    """Add files written straight to their final names (the report) to the list of this run's outputs."""
    known = _manifest(job)
    write_text(job.path / MANIFEST_NAME, "".join(f"{n}\n" for n in dict.fromkeys(known + names)))


def publish(job: JobDirectory, published: list[str] | None = None) -> list[str]:
    """Move every staged output to its final name; return the names this run has published.

    ``published``: the names an earlier call of this run published (the report follows the maps); the
    previous run's outputs that are in neither go.  The list of names is written before the moves, so
    a run killed half-way through leaves a directory the next run cleans up completely.
    """
    names = _staged(job)
    ours = list(dict.fromkeys([*(published or []), *names]))
    old = [name for name in _manifest(job) if name not in ours]
    record(job, ours + old)  # until the old ones are gone, the list covers them too
    _remove(job, old)
    for name in names:
        target = job.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            raise InputError(f"{target}: is a directory; the job cannot write its output there")
        os.replace(job.staging / name, target)
    write_text(job.path / MANIFEST_NAME, "".join(f"{n}\n" for n in ours))
    shutil.rmtree(job.staging, ignore_errors=True)
    return ours


def discard(job: JobDirectory, keep_previous: bool = False) -> None:
    """After a failure or an abort: remove the staging area, temporary files and every output of this
    run and of the run before (the job directory then holds only its logs and markers).

    ``keep_previous``: nothing was published and the earlier outputs stay (one of them is an input).
    """
    shutil.rmtree(job.staging, ignore_errors=True)
    if keep_previous:
        return
    _remove(job, _manifest(job))
    for temp in job.path.glob(TEMP_PREFIX + "*"):
        temp.unlink(missing_ok=True)
    (job.path / MANIFEST_NAME).unlink(missing_ok=True)


def class_outputs(job: JobDirectory, number: int, modify: ModifyParameters) -> ClassOutputs:
    """The names of the maps a class gets."""
    base = f"class{number:03d}"
    return ClassOutputs(
        scale=job.name(f"{base}_scale.mrc"), confidence=job.name(f"{base}_confidence.mrc"),
        equalised=job.name(f"{base}_equalised.mrc"),
        attenuated=job.name(f"{base}_attenuated.mrc") if modify.attenuate is not None else None,
        sigmoid=job.name(f"{base}_sigmoid.mrc") if modify.sigmoid is not None else None,
    )


class MapWriter:
    """The job's map writer: a thread of its own writes the maps handed to it (:meth:`write`), in
    order, while the job computes on; :meth:`wait` returns when every map handed over so far is
    written and raises the first error (a full disk: the job's usual path).  Used as a context
    manager, every write has ended before the block is left, however it is left, so no thread writes
    into a job directory being cleaned up.  An array must not change once handed over; it is let go
    of when written."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="occupy-write")
        self.pending: list[Future] = []
        self.lock = threading.Lock()

    def write(self, path: Path, array: np.ndarray, header: MapHeader, label: str) -> None:
        """Start writing ``array`` to ``path`` (``mapio.write_map``)."""
        with self.lock:
            self.pending.append(self.pool.submit(write_map, path, array, header, label))

    def wait(self) -> None:
        """Every map handed over so far written; the first error of any, re-raised here."""
        with self.lock:
            pending, self.pending = self.pending, []
        for future in pending:
            future.result()

    def __enter__(self) -> MapWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.pool.shutdown(wait=True)  # an error raised already wins over a write's


def class_map_writer(writer: MapWriter, job: JobDirectory, outputs: ClassOutputs, header: MapHeader,
                     input_path: str, pixel_size: float) -> Callable[[str, np.ndarray], None]:
    """What a class hands its final maps to (``classes.finish_class``'s ``ready``): each is written by
    ``writer`` under the class's output name for its kind, with the geometry of the input map."""
    names = {"scale": outputs.scale, "confidence": outputs.confidence, **dict(outputs.modified())}
    # the header had no voxel size: the outputs carry the one the run used
    geometry = header if header.pixel_size > 0 else header.with_voxel_size(pixel_size)

    def ready(kind: str, array: np.ndarray) -> None:
        label = f"occupy_relion {kind} of {input_path}"[:80]
        writer.write(job.output_path(Path(names[kind]).name), array, geometry, label)

    return ready


def describe_run(options: JobOptions, job: JobDirectory, inputs: Inputs, version: RelionVersion, pixel_size: float,
                 resolved: ScaleParameters, reference: float | None) -> RunDescription:
    """What the report's first page says about the run (the parameters with their resolved lengths)."""
    lengths = {"lowpass": resolved.lowpass, "kernel_radius": resolved.kernel_radius, "tile": resolved.tile}
    masks = options.mask_parameters().resolved(pixel_size)
    as_used = {"mask_extend": masks.extend, "mask_soft_edge": masks.soft_edge}
    asked = [(name, as_used.get(name, value)) for name, value in options.parameters().items() if name not in lengths]
    parameters = (asked[0], *lengths.items(), *asked[1:])  # mode, then the lengths as used, then the rest
    return RunDescription(input=inputs.source, input_kind=inputs.kind, model_path=inputs.model_path,
                          relion_version=version, job_dir=job.prefix, command_line=options.command_line,
                          pixel_size=pixel_size, parameters=parameters, joint=options.joint,
                          joint_reference=reference)


def write_occupancy(job: JobDirectory, options: JobOptions, run: RunDescription, inputs: Inputs,
                    results: list[ClassResult], skipped: list[int], regions: RegionsResult | None = None) -> str:
    """occupancy.star: the run (general table), one row per class and, when the regions were analysed,
    one per region and class; returns its name."""
    shared = results[0].settings
    general = general_table(
        input_description=run.input, input_kind=run.input_kind, model_path=run.model_path,
        relion_version=run.relion_version.version, relion_version_source=run.relion_version.source,
        class_count=len(inputs.classes), processed=[r.number for r in results], skipped=skipped,
        pixel_size=run.pixel_size, parameters=options.parameters(),
        settings={name: getattr(shared, name) for name in SHARED_SETTINGS},
        joint_reference=run.joint_reference, program_version=program_version(),
    )
    general.update(meanings())
    if regions is None:
        write_summary(job.output_path(SUMMARY_NAME), general, [class_row(r) for r in results])
        return job.name(SUMMARY_NAME)
    analysis, maps = regions.analysis, dict(regions.occupancy_maps)
    rows = [class_row(r, analysis.completeness_of(r.number) if r.number in analysis.classes else None,
                      maps.get(r.number)) for r in results]
    masks = options.mask_parameters().resolved(run.pixel_size)
    assert masks.extend is not None and masks.soft_edge is not None
    general.update(regions_general(analysis, masks.extend, masks.soft_edge))
    write_summary(job.output_path(SUMMARY_NAME), general, rows, region_rows(analysis, regions.region_masks),
                  region_tables(analysis, regions.region_masks, rows))
    return job.name(SUMMARY_NAME)


def write_report(job: JobDirectory, run: RunDescription, results: list[ClassResult],
                 warn: Callable[[str], None], regions: RegionsResult | None = None,
                 draw: Callable[..., list[Path]] | None = None) -> list[str]:
    """logfile.pdf and occupy.cxc, drawn into the staging area once the maps are published (the
    script names them); a failure is a warning (the maps are the job's result): what it wrote is
    removed.  Returns their names (project-relative).  ``draw``: what writes them (default
    ``report.write_report``; the job passes its background report's)."""
    from ..report import write_report as write_files

    try:
        paths = (draw or write_files)(job.path, run, results, regions=regions, into=job.staging)
    except JobAborted:
        raise
    except Exception as error:  # the report is a bonus: never fail the job for it
        shutil.rmtree(job.staging, ignore_errors=True)
        where = f"{job.path / Path(error.filename).name}: " if isinstance(error, OSError) and error.filename else ""
        reason = error.strerror if isinstance(error, OSError) and error.strerror else first_line(error)
        warn(f"report not written ({where}{type(error).__name__}: {reason})")
        return []
    return [job.name(Path(p).name) for p in paths]


def write_nodes(job: JobDirectory, results: list[ClassResult], summary: str, report: list[str],
                version: RelionVersion, regions: RegionsResult | None = None) -> None:
    """RELION_OUTPUT_NODES.star: modified maps, scale maps, region masks (3D masks), occupancy.star,
    the PDF if it was written now."""
    nodes = []
    for result in results:
        nodes += [OutputNode(path, "map") for _kind, path in result.outputs.modified()]
        nodes.append(OutputNode(result.outputs.scale, "localres"))
    if regions is not None:
        masks = (*([regions.variable_mask] if regions.variable_mask else []), *regions.region_masks)
        nodes += [OutputNode(path, "mask") for path in masks]
    nodes.append(OutputNode(summary, "process"))
    logfile = job.name(LOGFILE_NAME)
    if logfile in report and (job.path / LOGFILE_NAME).exists():
        nodes.append(OutputNode(logfile, "logfile"))
    write_output_nodes(job.path, nodes, None if version.assumed else version.version)


# -- the region step's files (job/regions.py) ------------------------------------------------------

VARIABLE_MASK = "variable_mask.mrc"


def region_mask_name(number: int) -> str:
    """The file of region ``number``'s mask."""
    return f"region{number:03d}_mask.mrc"


def occupancy_map_name(number: int) -> str:
    """The file of class ``number``'s occupancy map (on the analysis grid)."""
    return f"class{number:03d}_occupancy.mrc"


def remove_stale_region_files(job: JobDirectory, kept: set[str]) -> None:
    """Remove the region masks and occupancy maps an earlier run of this job wrote and this one did not
    (fewer regions now, or none): a directory never shows files of two runs as one result."""
    for pattern in ("region[0-9][0-9][0-9]_mask.mrc", VARIABLE_MASK, "class[0-9][0-9][0-9]_occupancy.mrc"):
        for path in job.path.glob(pattern):
            if job.name(path.name) not in kept:
                path.unlink(missing_ok=True)


def write_region_mask(job: JobDirectory, file: str, mask: np.ndarray, header: MapHeader, what: str) -> str:
    """One soft region mask on the maps' own grid (their geometry); returns its RELION name."""
    write_map(job.output_path(file), mask, header, label=f"occupy_relion {what}"[:80])
    return job.name(file)


def write_occupancy_map(job: JobDirectory, number: int, occupancy: np.ndarray, header: MapHeader,
                        spacing: tuple[float, float, float]) -> str:
    """Class ``number``'s occupancy map on the analysis grid (``spacing`` Å per voxel along z, y, x),
    placed in the same box as the input maps; returns its RELION name."""
    file = occupancy_map_name(number)
    write_map(job.output_path(file), occupancy, analysis_header(header, occupancy.shape, spacing),
              label=f"occupy_relion region occupancy of class {number}")
    return job.name(file)


def analysis_header(header: MapHeader, shape: tuple[int, ...], spacing: tuple[float, float, float]) -> MapHeader:
    """The geometry of a map on the analysis grid covering the box of ``header``'s map: sample 0 at the
    box's first voxel (the scale maps' grid convention), so the origin takes up any start offset."""
    nz, ny, nx = (int(n) for n in shape)
    sz, sy, sx = (float(s) for s in spacing)
    origin = tuple(float(o) + start * v for o, start, v in zip(header.origin, header.start, header.voxel_size))
    return MapHeader((nz, ny, nx), (sx, sy, sz), origin, (0, 0, 0), (1, 2, 3), (nx, ny, nz),  # type: ignore[arg-type]
                     (nx * sx, ny * sy, nz * sz))


def with_voxel_size(header: MapHeader, pixel_size: float) -> MapHeader:
    """``header`` itself, or with ``pixel_size`` filled in when it has none (a mask needs one)."""
    if header.pixel_size > 0 or not pixel_size > 0:
        return header
    return replace(header, voxel_size=(pixel_size,) * 3,
                   cell=tuple(n * pixel_size for n in header.sampling))  # type: ignore[arg-type]

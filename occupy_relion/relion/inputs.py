"""Find what to analyse: the model.star of a classification (or refinement) and its class maps.

Ways in (docs/relion.md §1, §4), in order of precedence:

- ``--model``: a ``_model.star``, an ``_optimiser.star`` (follow ``_rlnModelStarFile``), a ``_data.star``
  or a job directory such as ``Class3D/job008/`` (its last iteration, continued runs ``run_ct*`` too;
  ``run_model.star`` of a finished Refine3D or MultiBody).
- ``--in_parts Class3D/job008/run_it025_data.star``: the ``run_it025_model.star`` beside it.
- ``--in_3dref map.mrc`` alone: one map, treated as one class.  Together with a model it picks that
  class of the model.

Paths in a model.star are relative to the project directory (the working directory when RELION
runs us); when the model.star was given from elsewhere they are also looked up relative to its
project.  Unfiltered half maps next to a class map (Refine3D, MultiBody) are found by name.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import starfile

from ..errors import InputError, check_input_file, first_line

JOB_TYPES = ("Class3D", "Refine3D", "InitialModel", "MultiBody")

_ITERATION_MODEL = re.compile(r"^(?P<root>.+?)(?:_ct(?P<ct>\d+))?_it(?P<it>\d+)_model\.star$")
_HALF1_MODEL = re.compile(r"^(?P<root>.+?)(?:_ct(?P<ct>\d+))?_it(?P<it>\d+)_half1_model\.star$")
_FINAL_MODEL = re.compile(r"^(?P<root>.+?)_model\.star$")
_CLASS_MAP = re.compile(r"^(?P<root>.*)_(?P<what>class|body)(?P<number>\d+)\.mrc$")


@dataclass
class ClassInput:
    """One class (or body) to analyse."""

    number: int  # RELION's class/body number, 1-based
    map_path: str  # the map to read, relative to the working directory when possible
    distribution: float | None = None  # _rlnClassDistribution (None: not in the table)
    resolution: float | None = None  # _rlnEstimatedResolution, Å
    half_maps: tuple[str, str] | None = None  # two unfiltered half maps of this class, if found
    average_halves: bool = False  # the map is itself half 1: analyse the mean of both halves


@dataclass
class Inputs:
    """Everything the job analyses and how it was found."""

    source: str  # one line for run.out: which input was used and how
    kind: str  # Class3D, Refine3D, InitialModel, MultiBody, classification or map
    model_path: str | None  # the model.star read (None for a lone map)
    pixel_size: float | None  # _rlnPixelSize of the model.star
    classes: list[ClassInput] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# STAR files


def read_star(path: str | os.PathLike, blocks: int | None = None) -> dict:
    """The blocks of a STAR file (name without ``data_``), with errors naming the file."""
    path = Path(path)
    check_input_file(path, "a STAR file")
    try:
        if blocks is None:
            data = starfile.read(path, always_dict=True)
        else:
            data = starfile.read(path, read_n_blocks=blocks, always_dict=True)
    except PermissionError:
        raise InputError(f"{path}: cannot read (permission denied)") from None
    except Exception as error:  # the parser raises many kinds on malformed files
        raise InputError(f"{path}: not a readable STAR file ({first_line(error)})") from None
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: not a STAR file (no data blocks)")
    return data


def _as_record(block) -> dict:
    """A key-value block as a dict (a one-row loop is accepted too)."""
    if isinstance(block, dict):
        return block
    if isinstance(block, pd.DataFrame) and len(block) == 1:
        return block.iloc[0].to_dict()
    return {}


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number


def read_model(path: str | os.PathLike) -> tuple[dict, pd.DataFrame, str]:
    """(general record, classes or bodies table, table name) of a model.star; rejects 2D models."""
    path = Path(path)
    data = read_star(path, blocks=2)
    if "model_classes" not in data and "model_bodies" not in data:
        data = read_star(path)
    general = _as_record(data.get("model_general"))
    table_name = "model_bodies" if "model_bodies" in data else "model_classes"
    table = data.get(table_name)
    if not general and table is None:
        if "optimiser_general" in data:
            raise InputError(f"{path}: an optimiser.star, not a model.star")
        if "particles" in data or "optics" in data:
            raise InputError(f"{path}: a particles STAR file, not a model.star")
        raise InputError(f"{path}: not a model.star (no data_model_general or data_model_classes)")
    if not isinstance(table, pd.DataFrame) or len(table) == 0:
        raise InputError(f"{path}: no classes (data_model_classes is missing or empty)")
    if "rlnReferenceImage" not in table.columns:
        raise InputError(f"{path}: data_{table_name} has no _rlnReferenceImage column")
    dimensionality = _number(general.get("rlnReferenceDimensionality"))
    images = table["rlnReferenceImage"].astype(str)
    if dimensionality == 2 or images.str.contains("@").any():
        raise InputError(f"{path}: a 2D model.star (Class2D); occupy_relion needs 3D class maps")
    if dimensionality is not None and dimensionality != 3:
        raise InputError(f"{path}: reference dimensionality {dimensionality:g}, expected 3")
    return general, table, table_name


# ---------------------------------------------------------------------------------------------
# locating the model.star


def _iteration_key(match: re.Match) -> tuple[int, int]:
    return int(match.group("it")), int(match.group("ct") or -1)


def model_in_directory(directory: str | os.PathLike) -> tuple[Path, str]:
    """The model.star a job directory ends with, and a note on how it was picked."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    names = sorted(p.name for p in directory.iterdir() if p.is_file())
    finals = [n for n in names if _FINAL_MODEL.match(n) and not _ITERATION_MODEL.match(n)
              and not _HALF1_MODEL.match(n) and "_half" not in n]
    if "run_model.star" in finals:
        return directory / "run_model.star", "final model"
    if finals:
        return directory / finals[0], "final model"
    iterations = [(m, n) for n in names if (m := _ITERATION_MODEL.match(n))]
    if iterations:
        roots = {m.group("root") for m, _ in iterations}
        root = "run" if "run" in roots else None
        chosen = [(m, n) for m, n in iterations if root is None or m.group("root") == root]
        match, name = max(chosen, key=lambda item: _iteration_key(item[0]))
        return directory / name, f"last iteration ({match.group('it').lstrip('0') or '0'})"
    halves = [(m, n) for n in names if (m := _HALF1_MODEL.match(n))]
    if halves:
        match, name = max(halves, key=lambda item: _iteration_key(item[0]))
        return directory / name, f"last iteration ({match.group('it').lstrip('0') or '0'}, half 1 of a refinement)"
    raise InputError(f"{directory}: no model.star in this job directory "
                     "(expected run_itNNN_model.star or run_model.star)")


def model_from_optimiser(path: str | os.PathLike) -> Path:
    """The model.star an optimiser.star names in ``_rlnModelStarFile``."""
    path = Path(path)
    data = read_star(path, blocks=1)
    general = _as_record(data.get("optimiser_general"))
    listed = general.get("rlnModelStarFile")
    if not listed or str(listed) == "None":
        raise InputError(f"{path}: no _rlnModelStarFile in data_optimiser_general")
    found = _resolve(str(listed), path)
    if found is None:
        raise InputError(f"{path}: its model.star {listed} does not exist")
    return found


def model_from_data(path: str | os.PathLike) -> Path:
    """The ``_model.star`` written with a relion_refine ``_data.star`` (same root)."""
    path = Path(path)
    name = path.name
    if not name.endswith("_data.star"):
        raise InputError(f"{path}: not a _data.star written by relion_refine, so its model.star is unknown; "
                         "give --model <..._model.star>")
    model = path.with_name(name[: -len("_data.star")] + "_model.star")
    if not model.exists():
        optimiser = path.with_name(name[: -len("_data.star")] + "_optimiser.star")
        if optimiser.exists():
            return model_from_optimiser(optimiser)
        raise InputError(f"{path}: no model.star beside it ({model} not found)")
    return model


def locate_model(argument: str, option: str) -> tuple[Path, str]:
    """The model.star meant by ``argument`` (a model, optimiser or data STAR file, or a job directory)."""
    path = Path(argument)
    if path.is_dir():
        model, how = model_in_directory(path)
        return model, f"{option} {argument} -> {how} {model}"
    name = path.name
    if name.endswith("_optimiser.star"):
        model = model_from_optimiser(path)
        return model, f"{option} {argument} -> _rlnModelStarFile {model}"
    if name.endswith("_data.star"):
        if not path.exists():
            raise InputError(f"{path}: file not found")
        model = model_from_data(path)
        return model, f"{option} {argument} -> {model}"
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if option == "--in_parts" and not name.endswith("_model.star"):
        model_from_data(path)  # not a relion_refine _data.star: raises, saying so
    return path, f"{option} {argument}"


# ---------------------------------------------------------------------------------------------
# class maps


def _project_root(model_path: Path) -> Path | None:
    """The project directory of a model.star inside ``<Type>/jobNNN/``."""
    parts = model_path.parent
    if len(parts.parts) >= 2:
        return parts.parent.parent
    return None


def _resolve(listed: str, star_path: Path) -> Path | None:
    """A path listed in a STAR file: as is (project-relative), else relative to that STAR file's project."""
    candidate = Path(listed)
    if candidate.exists():
        return candidate
    if candidate.is_absolute():
        return None
    root = _project_root(star_path)
    if root is not None and (root / candidate).exists():
        return root / candidate
    beside = star_path.parent / candidate.name
    if beside.exists():
        return beside
    return None


def half_maps_of(map_path: str | os.PathLike) -> tuple[str, str] | None:
    """The two unfiltered half maps RELION writes next to a final class or body map, if both exist."""
    path = Path(map_path)
    match = _CLASS_MAP.match(path.name)
    if not match:
        return None
    stem = f"{match.group('what')}{match.group('number')}"
    halves = [path.with_name(f"{match.group('root')}_half{k}_{stem}_unfil.mrc") for k in (1, 2)]
    if all(h.exists() for h in halves):
        return str(halves[0]), str(halves[1])
    return None


def _job_type(model_path: Path, table_name: str) -> str:
    if table_name == "model_bodies":
        return "MultiBody"
    for part in reversed(model_path.parts[:-1]):
        if part in JOB_TYPES:
            return part
    return "classification"


def classes_of_model(model_path: Path) -> tuple[list[ClassInput], str, float | None]:
    """Classes (or bodies) of a model.star with their maps, the job type, and the pixel size."""
    general, table, table_name = read_model(model_path)
    kind = _job_type(model_path, table_name)
    is_half1 = model_path.name.endswith("_half1_model.star")
    classes = []
    for row_index, row in enumerate(table.itertuples(index=False)):
        number = row_index + 1
        listed = str(row.rlnReferenceImage)
        found = _resolve(listed, model_path)
        if found is None:
            what = "body" if table_name == "model_bodies" else "class"
            raise InputError(f"{listed}: map of {what} {number} not found (listed in {model_path})")
        distribution = _number(getattr(row, "rlnClassDistribution", None))
        resolution = _number(getattr(row, "rlnEstimatedResolution", None))
        half_maps = None
        average = False
        if is_half1:
            other = found.with_name(found.name.replace("_half1_", "_half2_"))
            if "_half1_" in found.name and other.exists():
                half_maps, average = (str(found), str(other)), True
        else:
            half_maps = half_maps_of(found)
        classes.append(ClassInput(number, str(found), distribution, resolution, half_maps, average))
    pixel_size = _number(general.get("rlnPixelSize"))
    if pixel_size is not None and not (math.isfinite(pixel_size) and pixel_size > 0):
        pixel_size = None
    return classes, kind, pixel_size


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.normpath(a) == os.path.normpath(b)


def load_inputs(model: str | None = None, in_parts: str | None = None, in_3dref: str | None = None) -> Inputs:
    """Find the model.star (or lone map) to analyse from the job's options."""
    model = model or None
    in_parts = in_parts or None
    in_3dref = in_3dref or None
    if model is None and in_parts is None and in_3dref is None:
        raise InputError("no input: give --in_parts <..._data.star>, --model <..._model.star or job directory> "
                         "or --in_3dref <map.mrc>")
    if model is None and in_parts is None:
        assert in_3dref is not None  # one of the three is given (checked above)
        path = Path(in_3dref)
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if path.name.endswith(".star"):
            model_path, source = locate_model(in_3dref, "--in_3dref")
        else:
            lone = ClassInput(1, str(path), None, None, half_maps_of(path), False)
            note = " (with its two unfiltered half maps)" if lone.half_maps else ""
            return Inputs(f"--in_3dref {in_3dref}: one map{note}", "map", None, None, [lone])
    elif model is not None:
        model_path, source = locate_model(model, "--model")
    else:
        assert in_parts is not None  # neither --model nor a lone --in_3dref
        model_path, source = locate_model(in_parts, "--in_parts")
    classes, kind, pixel_size = classes_of_model(model_path)
    if in_3dref is not None and (model is not None or in_parts is not None):
        chosen = [c for c in classes if _same_file(c.map_path, in_3dref)]
        if not chosen:
            raise InputError(f"{in_3dref}: not one of the class maps of {model_path}; give --in_3dref alone "
                             "to analyse a single map, or leave it empty")
        classes = chosen
        source += f", only class {chosen[0].number} (--in_3dref)"
    return Inputs(source, kind, str(model_path), pixel_size, classes)

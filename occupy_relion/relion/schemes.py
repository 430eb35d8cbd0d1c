"""``occupy_relion install-scheme``: copy a shipped RELION Scheme (4.0/5.0) or Schedule (3.1) into a project.

The shipped files live in the repository's ``schemes/`` folder (installed as ``occupy_relion/schemes/``):

- ``schemes/<name>/scheme.star`` + ``<job>/job.star``            RELION 4.0/5.0 Scheme
- ``schemes/Schedules/<name>/schedule.star`` + ``<job>/job.star``  RELION 3.1 Schedule
- ``schemes/external/job.star``                                    the External job for the GUI

Installing copies one of them to ``Schemes/<name>/`` or ``Schedules/<name>/`` of the project
(chosen from ``default_pipeline.star``: RELION 3.1 pipelines use integer process types; in a new
project from the programs on PATH: ``relion_scheduler`` is 3.1's, ``relion_schemer`` 4.0's) and writes
the absolute path of the ``occupy_relion`` executable into every External job's ``fn_exe``, so users
never edit STAR files by hand.  ``external`` instead writes ``.gui_externaljob.star``, the file the
RELION GUI (3.1 to 5.0) loads as the External job's settings when it starts.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from ..atomic import write_text
from .version import version_from_pipeline

#: the executable name written in the shipped files, replaced on installation
SHIPPED_EXECUTABLE = "occupy_relion"
#: the GUI job (not a scheme)
GUI_JOB = "external"
GUI_SETTINGS_FILE = ".gui_externaljob.star"

DESCRIPTIONS = {
    "occupy_class3d": "Class3D, then occupy_relion on its last iteration, then exit",
    "occupy_select": "Class3D, occupy_relion, then select the particles of the most complete class (or "
                     "the class with most of a chosen region) if it passes two thresholds (else stop)",
    "occupy_focus": "occupy_relion on a Class3D/Refine3D iteration, Subtract keeping its variable region, "
                    "Class3D without alignment on it, occupy_relion on the focused classes (optionally Select "
                    "a class and revert it to the original particles)",
    GUI_JOB: "the External job's settings for the RELION GUI (.gui_externaljob.star)",
}

#: the variables to set first, with an example value, per scheme (what ``next_steps`` prints)
FIRST_VARIABLES = {
    "occupy_focus": (("input_data", "Class3D/job008/run_it025_data.star"), ("nr_classes", "3")),
}
DEFAULT_FIRST_VARIABLES = (("particles", "Select/job005/particles.star"),
                           ("reference", "InitialModel/job006/initial_model.mrc"))

_FN_EXE = re.compile(r"^(\s*fn_exe\s+)(\S+|\"[^\"]*\")(\s*)$")


class InstallError(Exception):
    """A one-line reason why nothing was installed."""


def shipped_root() -> Path:
    """The folder holding the shipped schemes: inside the installed package, else the source checkout."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "schemes", package.parent / "schemes"):
        if (candidate / "external" / "job.star").is_file():
            return candidate
    raise InstallError(f"the shipped schemes are missing (looked in {package / 'schemes'} and "
                       f"{package.parent / 'schemes'}); reinstall occupy_relion")


def available(root: Path) -> dict[str, tuple[bool, bool]]:
    """name -> (has a 4.0/5.0 Scheme, has a 3.1 Schedule), plus the GUI job."""
    names: dict[str, tuple[bool, bool]] = {}
    for path in sorted(root.glob("*/scheme.star")):
        names[path.parent.name] = (True, False)
    for path in sorted(root.glob("Schedules/*/schedule.star")):
        scheme, _ = names.get(path.parent.name, (False, False))
        names[path.parent.name] = (scheme, True)
    names[GUI_JOB] = (True, True)
    return names


def pipeline_is_relion31(project: Path) -> bool | None:
    """True for a RELION 3.1 default_pipeline.star, False for 4.0/5.0, None when it cannot tell."""
    pipeline = project / "default_pipeline.star"
    if not pipeline.is_file():
        return None
    if not os.access(pipeline, os.R_OK):
        raise InstallError(f"{pipeline}: cannot be read (permission denied)")
    version = version_from_pipeline(pipeline)
    return None if version is None else version == "3.1"


def installed_relion_is_31() -> bool | None:
    """From the programs on PATH: relion_scheduler is RELION 3.1's, relion_schemer 4.0's and later."""
    schemer, scheduler = shutil.which("relion_schemer"), shutil.which("relion_scheduler")
    if schemer and not scheduler:
        return False
    if scheduler and not schemer:
        return True
    return None


def default_executable() -> Path | None:
    """The ``occupy_relion`` console script of this Python environment (absolute), if any."""
    beside_python = Path(sys.executable).parent / SHIPPED_EXECUTABLE
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python.absolute()
    found = shutil.which(SHIPPED_EXECUTABLE)
    return Path(found).absolute() if found else None


def _is_external_job(text: str) -> bool:
    return "relion.external" in text or re.search(r"_rlnJobType\s+99\b", text) is not None


def fill_executable(text: str, executable: str) -> str:
    """job.star text with the value of ``fn_exe`` replaced by ``executable`` (External jobs only)."""
    if not _is_external_job(text):
        return text
    lines = []
    for line in text.splitlines(keepends=True):
        ending = "\n" if line.endswith("\n") else ""
        match = _FN_EXE.match(line.rstrip("\n"))
        if match:
            line = f"{match.group(1)}{executable}{match.group(3)}{ending}"
        lines.append(line)
    return "".join(lines)


def rename(text: str, folder: str, old: str, new: str) -> str:
    """Replace ``<folder>/<old>/`` (the scheme's own name in paths) by ``<folder>/<new>/``."""
    return text.replace(f"{folder}/{old}/", f"{folder}/{new}/")


def _check_executable(executable: Path) -> str:
    text = str(executable)
    if any(character.isspace() for character in text):
        raise InstallError(f"--exe {text}: RELION runs the job through /bin/sh, so the path must not contain "
                           "spaces (make a symbolic link without spaces)")
    if not executable.is_file() or not os.access(executable, os.X_OK):
        raise InstallError(f"--exe {text}: not an executable file")
    return text


def install_gui_job(root: Path, project: Path, executable: str, force: bool, relion31: bool | None) -> Path:
    """Write the External job's GUI settings file into the project.

    The shipped file names the job type both ways (3.1's integer, 4.0/5.0's label); for a 3.1
    project the label, which 3.1 does not know and warns about, is left out.
    """
    target = project / GUI_SETTINGS_FILE
    if target.exists() and not force:
        raise InstallError(f"{target}: exists (your saved External-job settings); use --force to replace it")
    text = fill_executable((root / GUI_JOB / "job.star").read_text(), executable)
    if relion31:
        text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("_rlnJobTypeLabel"))
    write_text(target, text)
    return target


def install_scheme(root: Path, name: str, project: Path, executable: str, relion31: bool,
                   new_name: str | None, force: bool) -> Path:
    """Copy a shipped Scheme/Schedule into the project; returns its directory."""
    folder = "Schedules" if relion31 else "Schemes"
    source = root / "Schedules" / name if relion31 else root / name
    if not source.is_dir():
        kind = "3.1 Schedule" if relion31 else "4.0/5.0 Scheme"
        raise InstallError(f"{name}: no RELION {kind} of this name is shipped")
    installed_name = new_name or name
    target = project / folder / installed_name
    lock = project / f".relion_lock_{'schedule' if relion31 else 'scheme'}_{installed_name}"
    if lock.exists():
        raise InstallError(f"{target}: is running or was killed while running ({lock} exists); "
                           f"stop it or remove {lock} first")
    if target.exists() and not force:
        raise InstallError(f"{target}: exists; use --force to replace it (its run.out and state are lost)")
    (project / folder).mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{installed_name}-", dir=project / folder))
    try:
        for path in sorted(source.rglob("*")):
            if path.is_dir() or path.name.startswith(".") or "__pycache__" in path.parts:
                continue
            text = path.read_text()
            if path.name == "job.star":
                text = fill_executable(text, executable)
            if installed_name != name:
                text = rename(text, folder, name, installed_name)
            destination = staging / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(text)
        os.chmod(staging, 0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def next_steps(name: str, relion31: bool, shipped_name: str | None = None) -> str:
    """What to type next (printed after installing ``shipped_name``, default ``name``, as ``name``)."""
    if relion31:
        program, flag, folder = "relion_scheduler", "--schedule", "Schedules"
    else:
        program, flag, folder = "relion_schemer", "--scheme", "Schemes"
    first = FIRST_VARIABLES.get(shipped_name or name, DEFAULT_FIRST_VARIABLES)
    settings = "".join(f"  {program} {flag} {name} --set_var {variable} --value {value}\n" for variable, value in first)
    return (
        f"Set its variables (after --reset, which restores the shipped values), e.g.\n"
        f"  {program} {flag} {name} --reset\n"
        f"{settings}"
        f"then run it from the project directory:\n"
        f"  {program} {flag} {name} --run --pipeline_control {folder}/{name}/ "
        f">> {folder}/{name}/run.out 2>> {folder}/{name}/run.err &\n"
        f"(or use the GUI's {'Schedules' if relion31 else 'Schemes'} menu)."
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="occupy_relion install-scheme",
        description="Copy a shipped RELION Scheme (4.0/5.0, Schemes/NAME/) or Schedule (3.1, Schedules/NAME/) "
                    "into a RELION project with the occupy_relion executable filled in.  NAME 'external' "
                    "writes the External job's GUI settings (.gui_externaljob.star) instead.",
    )
    parser.add_argument("name", nargs="?", help="what to install (see --list)")
    parser.add_argument("--project", default=".", help="RELION project directory (default: current directory)")
    parser.add_argument("--exe", help="occupy_relion executable to write into the jobs "
                                      "(default: the one of this installation, absolute path)")
    version = parser.add_mutually_exclusive_group()
    version.add_argument("--schedule", action="store_true",
                         help="install the RELION 3.1 Schedule (default: decided by default_pipeline.star, "
                              "else by the RELION programs on PATH)")
    version.add_argument("--scheme", action="store_true",
                         help="install the RELION 4.0/5.0 Scheme (default: as for --schedule)")
    parser.add_argument("--as", dest="new_name", metavar="NEW_NAME",
                        help="install under another name (e.g. to run the same scheme twice)")
    parser.add_argument("--force", action="store_true", help="replace an existing installation")
    parser.add_argument("--list", action="store_true", help="list what can be installed")
    return parser


def _error(message: str) -> int:
    print(f"occupy_relion install-scheme: {message}", file=sys.stderr)
    return 1


def _list(names: dict[str, tuple[bool, bool]], asked: bool) -> int:
    """``--list`` (or no name): what is shipped, for which RELION."""
    for name, (scheme, schedule) in names.items():
        versions = "GUI" if name == GUI_JOB else ", ".join(
            v for v, ok in (("RELION 4.0/5.0 Scheme", scheme), ("RELION 3.1 Schedule", schedule)) if ok)
        print(f"{name:16s} {DESCRIPTIONS.get(name, '')} [{versions}]")
    return 0 if asked else _error("say what to install (one of: " + ", ".join(names) + ")")


def _checked(arguments: argparse.Namespace, names: dict[str, tuple[bool, bool]]) -> tuple[Path, str]:
    """(project directory, executable) of a valid request; InstallError naming what is wrong."""
    if arguments.name not in names:
        raise InstallError(f"{arguments.name}: unknown; choose one of: {', '.join(names)}")
    if arguments.new_name is not None and not re.fullmatch(r"[A-Za-z0-9_-]+", arguments.new_name):
        raise InstallError(f"--as {arguments.new_name}: use letters, digits, '_' and '-' only")
    project = Path(arguments.project)
    if not project.is_dir():
        raise InstallError(f"--project {project}: not a directory")
    if arguments.exe:
        return project, _check_executable(Path(arguments.exe).expanduser().absolute())
    found = default_executable()
    if found is None:
        raise InstallError("cannot find the occupy_relion executable; give it with --exe PATH")
    return project, _check_executable(found)


def _for_relion31(arguments: argparse.Namespace, detected: bool | None, project: Path) -> bool:
    """Whether to install the 3.1 Schedule: as asked, else as the project (or PATH) says, else not."""
    if arguments.schedule:
        return True
    if arguments.scheme:
        return False
    if detected is None:
        print("occupy_relion install-scheme: cannot tell the RELION version from "
              f"{project / 'default_pipeline.star'} or the programs on PATH; installing the 4.0/5.0 "
              "Scheme (use --schedule for RELION 3.1)", file=sys.stderr)
    return bool(detected)


def main(argv: list[str]) -> int:
    """Entry point of ``occupy_relion install-scheme``; returns the exit code."""
    parser = build_parser()
    try:
        arguments = parser.parse_args(argv)
    except SystemExit as done:  # --help or a usage error (argparse printed it)
        return int(done.code or 0) if not isinstance(done.code, str) else 2
    try:
        root = shipped_root()
        names = available(root)
        if arguments.list or not arguments.name:
            return _list(names, arguments.list)
        project, executable = _checked(arguments, names)
        detected = pipeline_is_relion31(project)
        if detected is None:
            detected = installed_relion_is_31()
        if arguments.name == GUI_JOB:
            gui31 = True if arguments.schedule else False if arguments.scheme else detected  # None: the GUI's own
            target = install_gui_job(root, project, executable, arguments.force, gui31)
            print(f"Wrote {target} (executable {executable}).\n"
                  "Restart the RELION GUI (or choose Jobs > Load job settings in 3.1): the External job "
                  "is filled in; pick the Class3D _data.star as 'Input particles'.")
            return 0
        relion31 = _for_relion31(arguments, detected, project)
        scheme, schedule = names[arguments.name]
        if (relion31 and not schedule) or (not relion31 and not scheme):
            raise InstallError(f"{arguments.name}: not shipped for RELION {'3.1' if relion31 else '4.0/5.0'}")
        target = install_scheme(root, arguments.name, project, executable, relion31,
                                arguments.new_name, arguments.force)
    except InstallError as error:
        return _error(str(error))
    except OSError as error:
        return _error(f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))
    name = arguments.new_name or arguments.name
    kind = "RELION 3.1 Schedule" if relion31 else "RELION 4.0/5.0 Scheme"
    print(f"Installed the {kind} {name} in {target}/ (executable {executable}).")
    print(next_steps(name, relion31, arguments.name))
    return 0


__all__ = ["InstallError", "available", "fill_executable", "install_scheme", "main", "pipeline_is_relion31",
           "shipped_root"]

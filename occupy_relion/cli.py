"""Command line: RELION's External-job flags plus our parameters; ``install-scheme`` sub-command.

RELION calls ``occupy_relion --o External/job012/ --in_parts … [--LABEL VALUE]… --j N
[--pipeline_control External/job012/]``.  A user parameter left empty in the GUI arrives as a bare
``--LABEL``: every parameter of ours accepts that (it means "the default"; for the yes/no ones
"yes").  Hyphenated spellings (``--scale-limit``) work too.  Unknown options are named in a
warning, never fatal: the GUI makes typos in labels easy, and RELION never reads our exit code.

Start-up is kept short (``--help`` in about 0.1 s): importing this module loads neither numpy nor the
job; the job (and with it numpy, scipy, pandas, starfile) is imported when a command line has parsed,
and the defaults the help text shows are looked up only when the help is printed.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from typing import TYPE_CHECKING

from .errors import InputError, JobAborted

if TYPE_CHECKING:
    from .job import AbortCheck, JobOptions

_TRUE = {"", "yes", "y", "true", "t", "1", "on"}
_FALSE = {"no", "n", "false", "f", "0", "off", "none"}


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so a bad command line still ends as a RELION failure."""

    def error(self, message: str):  # noqa: D102 (argparse API)
        raise InputError(message)


#: the defaults the help text names, as the help shows them.  The values are the core's (JobOptions'
#: defaults); they are repeated here only because importing the core (numpy, scipy) would make
#: ``--help`` take seconds.  tests/test_startup.py checks they are the same as JobOptions'.
HELP_DEFAULTS = {"pivot": 0.5, "scale_limit": 0.05, "max_gain": 4.0, "region_difference": 0.25}


def _defaults() -> dict[str, object]:
    """The defaults filled into the help texts."""
    return dict(HELP_DEFAULTS)


class _Help(argparse.Action):
    """``-h/--help``: fill the defaults into the help texts (``{pivot}`` ...), print, exit."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102 (argparse API)
        defaults = _defaults()
        for action in parser._actions:  # noqa: SLF001 (argparse keeps its actions here)
            if action.help and "{" in action.help:
                action.help = action.help.format(**defaults)
        parser.print_help()
        parser.exit()


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked for."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):  # noqa: A002
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102 (argparse API)
        from . import __version__

        print(f"occupy_relion {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The option parser (RELION's flags, then ours)."""
    parser = _Parser(
        prog="occupy_relion",
        description="Local scale (relative occupancy) of every class of a RELION 3D classification, "
                    "as a RELION External job.  Also: occupy_relion install-scheme --help",
        allow_abbrev=False, add_help=False,
    )
    parser.add_argument("-h", "--help", action=_Help, help="show this help message and exit")

    def add(name: str, *aliases: str, **kwargs) -> None:
        flags = []
        for word in (name, *aliases):
            flags.append(f"--{word}")
            if "_" in word:
                flags.append("--" + word.replace("_", "-"))
        parser.add_argument(*flags, dest=name, **kwargs)

    add("o", metavar="JOB_DIR", help="output (job) directory, e.g. External/job012/")
    add("in_parts", metavar="DATA_STAR", help="a _data.star of Class3D/Refine3D/...: its _model.star is used")
    add("in_3dref", metavar="MAP", help="one map (alone), or one class map of the model to analyse only it")
    add("in_mask", metavar="MASK", help="solvent-definition mask (either polarity) of the maps' size")
    for name in ("in_mics", "in_movies", "in_coords"):
        add(name, metavar="FILE", help=argparse.SUPPRESS)
    add("j", metavar="N", default="1", help="threads (default 1)")
    add("pipeline_control", metavar="DIR", help=argparse.SUPPRESS)

    add("model", metavar="MODEL", nargs="?",
        help="a _model.star, an _optimiser.star, a _data.star or a job directory (last iteration)")
    add("mode", nargs="?", help="occupancy (default) or resolution")
    add("lowpass", metavar="ANGSTROM", nargs="?", help="low-pass for the occupancy estimate, Å (default: derived)")
    add("amplify", metavar="GAMMA", nargs="?", help="equalisation power γ ≥ 1 (default inf: full equalisation)")
    add("attenuate", metavar="GAMMA", nargs="?", help="also write an attenuated map with power γ ≥ 1")
    add("sigmoid", metavar="GAMMA", nargs="?", help="also write a sigmoid-modified map with power γ ≥ 1")
    add("pivot", metavar="SCALE", nargs="?", help="sigmoid pivot in (0, 1) (default {pivot})")
    add("scale_limit", metavar="SCALE", nargs="?",
        help="scales below this are treated as this (default {scale_limit})")
    add("max_gain", metavar="GAIN", nargs="?",
        help="no density is multiplied by more than this when modifying: the scale a gain is computed from "
             "is at least 1/GAIN (default {max_gain:g}; inf: only the scale limit)")
    # the GUI shows about 12 characters of a parameter's label: short aliases for the long names
    add("exclude_solvent", "no_solvent", metavar="YES|NO", nargs="?", const="yes", default="no",
        help="flatten the solvent in the modified maps (bare flag = yes)")
    add("joint", metavar="YES|NO", nargs="?", const="yes", default="no",
        help="one common reference for all classes, so scales compare across classes (bare flag = yes)")
    add("mask_extend", metavar="ANGSTROM", nargs="?",
        help="region masks: extend the region by this many Å (default 3, at least 1 pixel)")
    add("mask_soft_edge", "mask_edge", metavar="ANGSTROM", nargs="?",
        help="region masks: raised-cosine soft edge this many Å wide (default 6, at least 2 pixels)")
    add("region_difference", metavar="OCCUPANCY", nargs="?",
        help="least occupancy difference between classes (one map: below full) that makes a region "
             "(default {region_difference})")
    add("relion_version", metavar="VERSION", nargs="?",
        help="write output node types for this RELION version (default: from default_pipeline.star)")
    parser.add_argument("--version", action=_Version, help="show the program's version number and exit")
    return parser


def _optional_float(option: str, value: str | None, default: float | None) -> float | None:
    """A number, or None for none/no/off; ``default`` when the option is bare or absent."""
    if value is not None and value.strip().lower() in ("none", "no", "off"):
        return None
    return default if value is None or value.strip() == "" else _float(option, value, 0.0)


def _float(option: str, value: str | None, default: float) -> float:
    """A number (not NaN); ``default`` when the option is bare or absent."""
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise InputError(f"--{option}: {value!r} is not a number") from None
    if math.isnan(number):
        raise InputError(f"--{option}: {value!r} is not a number")
    return number


def parse_bool(option: str, value: str | None) -> bool:
    """yes/no/true/false/1/0/on/off (case-insensitive); a bare flag (None or '') is yes."""
    text = "" if value is None else value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"--{option}: {value!r} is not yes or no")


def _threads(value: str | None) -> int:
    text = (value or "1").strip()
    try:
        return int(float(text))
    except ValueError:
        raise InputError(f"--j: {value!r} is not a number of threads") from None


def parse_options(argv: list[str]) -> JobOptions:
    """JobOptions from a command line; raises InputError (naming the option) for bad values."""
    namespace, unknown = build_parser().parse_known_args(argv)
    return _options(namespace, unknown, argv)


def _options(namespace: argparse.Namespace, unknown: list[str], argv: list[str]) -> JobOptions:
    """JobOptions from a parsed command line (``argv`` is what the run.out shows)."""
    from .job import JobOptions, command_line  # the job's modules: only once the command line has parsed

    if not namespace.o:
        raise InputError("--o: the output (job) directory is missing, e.g. --o External/job012/")
    defaults = JobOptions  # the core's defaults (see JobOptions)
    mode = (namespace.mode or defaults.mode).strip().lower()
    return JobOptions(
        output_dir=namespace.o,
        in_parts=namespace.in_parts or None,
        in_3dref=namespace.in_3dref or None,
        in_mask=namespace.in_mask or None,
        model=namespace.model or None,
        mode=mode,
        lowpass=_optional_float("lowpass", namespace.lowpass, defaults.lowpass),
        amplify=_float("amplify", namespace.amplify, defaults.amplify),
        attenuate=_optional_float("attenuate", namespace.attenuate, None),
        sigmoid=_optional_float("sigmoid", namespace.sigmoid, None),
        pivot=_float("pivot", namespace.pivot, defaults.pivot),
        scale_limit=_float("scale_limit", namespace.scale_limit, defaults.scale_limit),
        max_gain=_float("max_gain", namespace.max_gain, defaults.max_gain),
        exclude_solvent=parse_bool("exclude_solvent", namespace.exclude_solvent),
        joint=parse_bool("joint", namespace.joint),
        mask_extend=_optional_float("mask_extend", namespace.mask_extend, defaults.mask_extend),
        mask_soft_edge=_optional_float("mask_soft_edge", namespace.mask_soft_edge, defaults.mask_soft_edge),
        region_difference=_float("region_difference", namespace.region_difference, defaults.region_difference),
        threads=_threads(namespace.j),
        relion_version=namespace.relion_version or None,
        ignored=tuple(unknown),
        command_line=command_line(argv),
    )


def _output_dir_of(argv: list[str]) -> str | None:
    """The --o value of a command line that did not parse (to leave a FAILURE marker there)."""
    for index, word in enumerate(argv):
        if word == "--o" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--o="):
            return word[4:]
    return None


def _raise_abort(signum, frame):  # noqa: ARG001 (signal handler signature)
    raise JobAborted(f"signal {signal.Signals(signum).name}")


def main(argv: list[str] | None = None, *, abort_check: AbortCheck | None = None) -> int:
    """Entry point of the ``occupy_relion`` console script; returns the exit code.

    ``abort_check`` (given the job directory, raises JobAborted to stop) defaults to RELION's marker file.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "install-scheme":
        from .relion import schemes  # written separately; imported only when asked for

        return int(schemes.main(argv[1:]) or 0)
    try:
        namespace, unknown = build_parser().parse_known_args(argv)
    except SystemExit as done:  # --help, --version
        return int(done.code or 0) if not isinstance(done.code, str) else 1
    except InputError as error:
        return _fail_early(argv, error)
    from .report import background

    background.prestart()  # the report's process imports matplotlib while the job imports its libraries
    try:
        return _job(namespace, unknown, argv, abort_check)
    finally:
        background.end_prestarted()


def _fail_early(argv: list[str], error: InputError) -> int:
    from .job import fail_early

    return fail_early(_output_dir_of(argv), str(error))


def _job(namespace: argparse.Namespace, unknown: list[str], argv: list[str], abort_check: AbortCheck | None) -> int:
    """Options from the parsed command line, then the job (SIGTERM stops it like an abort)."""
    try:
        options = _options(namespace, unknown, argv)
    except InputError as error:
        return _fail_early(argv, error)
    from .job import run_job
    from .relion import markers

    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _raise_abort)
    except ValueError:  # not in the main thread (e.g. called from a test runner thread)
        previous = None
    try:
        return run_job(options, abort_check=markers.check_abort if abort_check is None else abort_check)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["build_parser", "main", "parse_bool", "parse_options"]

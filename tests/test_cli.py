"""Command line as RELION builds it: bare flags, yes/no values, hyphens, unknown options, sub-command."""

from __future__ import annotations

import math
import subprocess
import sys
import types

import pytest

import occupy_relion.relion as relion_package
import occupy_relion.report as report_module
from occupy_relion.cli import main, parse_bool, parse_options
from occupy_relion.errors import InputError
from occupy_relion.relion import markers


def test_relion_command_line():
    """The line RELION 3.1–5.0 builds: inputs, --LABEL VALUE pairs, a bare --LABEL, --j, --pipeline_control."""
    options = parse_options([
        "--o", "External/job012/", "--in_parts", "Class3D/job008/run_it025_data.star", "--in_mask", "mask.mrc",
        "--in_mics", "x.star", "--in_movies", "y.star", "--in_coords", "z.star",
        "--lowpass", "9", "--joint", "--attenuate", "2", "--j", "4", "--pipeline_control", "External/job012/",
    ])
    assert options.output_dir == "External/job012/"
    assert options.in_parts == "Class3D/job008/run_it025_data.star" and options.in_mask == "mask.mrc"
    assert options.lowpass == 9.0 and options.attenuate == 2.0 and options.sigmoid is None
    assert options.joint is True and options.exclude_solvent is False
    assert options.threads == 4 and math.isinf(options.amplify)
    assert options.ignored == ()
    assert "--pipeline_control" in options.command_line


def test_hyphens_bare_values_and_defaults():
    options = parse_options(["--o", "E/", "--scale-limit", "0.1", "--exclude-solvent", "no",
                             "--in-parts", "a_data.star",
                             "--lowpass", "--sigmoid", "--relion-version", "4", "--amplify", "inf", "--mode"])
    assert options.scale_limit == 0.1 and options.exclude_solvent is False and options.in_parts == "a_data.star"
    assert options.max_gain == 4.0 and parse_options(["--o", "E/", "--max_gain", "inf"]).max_gain == math.inf
    assert options.lowpass is None and options.sigmoid is None  # bare: the default
    assert options.relion_version == "4" and math.isinf(options.amplify) and options.mode == "occupancy"


@pytest.mark.parametrize("value, expected", [
    (None, True), ("", True), ("yes", True), ("YES", True), ("true", True), ("1", True), ("on", True),
    ("no", False), ("False", False), ("0", False), ("off", False),
])
def test_parse_bool(value, expected):
    assert parse_bool("joint", value) is expected


def test_parse_bool_rejects():
    with pytest.raises(InputError, match="--joint: 'maybe' is not yes or no"):
        parse_bool("joint", "maybe")


def test_unknown_options_are_a_warning(synthetic_project, in_project, capsys, monkeypatch):
    monkeypatch.setattr(report_module, "write_report", lambda *a, **k: [])
    options = parse_options(["--o", "E/", "--nodes_mode", "both", "--colour", "--j", "1"])
    assert options.ignored == ("--nodes_mode", "both", "--colour")
    in_project(synthetic_project)
    code = main(["--o", "External/job001/", "--in_parts", "Class3D/job005/run_it020_data.star", "--typo_option", "3",
                 "--j", "1"])
    err = capsys.readouterr().err
    assert code == 0
    assert "WARNING: ignoring unknown options: --typo_option 3" in err


def test_bad_value_leaves_a_failure_marker(tmp_path, in_project, capsys):
    in_project(tmp_path)
    (tmp_path / "External" / "job003").mkdir(parents=True)
    (tmp_path / "External" / "job003" / markers.SUCCESS).write_text("")
    code = main(["--o", "External/job003/", "--in_parts", "x_data.star", "--pivot", "half", "--j", "1"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == "ERROR: --pivot: 'half' is not a number"
    assert (tmp_path / "External/job003" / markers.FAILURE).exists()
    assert not (tmp_path / "External/job003" / markers.SUCCESS).exists()


def test_missing_output_directory_option(capsys):
    assert main(["--in_parts", "x_data.star"]) == 1
    assert "--o: the output (job) directory is missing" in capsys.readouterr().err


def test_bad_threads(capsys):
    assert main(["--o", "nowhere/", "--j", "zero"]) == 1
    assert "--j: 'zero' is not a number of threads" in capsys.readouterr().err


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "--in_parts" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "occupy_relion" in capsys.readouterr().out


def test_install_scheme_dispatches_lazily(monkeypatch):
    received = []
    fake = types.ModuleType("occupy_relion.relion.schemes")
    fake.main = lambda argv: received.append(argv) or 7
    monkeypatch.setitem(sys.modules, "occupy_relion.relion.schemes", fake)
    monkeypatch.setattr(relion_package, "schemes", fake, raising=False)
    assert main(["install-scheme", "--project", "p", "--name", "x"]) == 7
    assert received == [["--project", "p", "--name", "x"]]


def test_python_dash_m(tmp_path):
    result = subprocess.run([sys.executable, "-m", "occupy_relion", "--version"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("occupy_relion ")


def test_region_and_mask_options_with_the_gui_s_short_names():
    options = parse_options(["--o", "E/", "--mask_extend", "4", "--mask_edge", "8", "--no_solvent", "yes",
                             "--region_difference", "0.3"])
    assert (options.mask_extend, options.mask_soft_edge, options.exclude_solvent) == (4.0, 8.0, True)
    assert options.region_difference == 0.3 and options.ignored == ()
    long = parse_options(["--o", "E/", "--mask-soft-edge", "5", "--exclude_solvent", "no", "--mask_extend"])
    assert (long.mask_soft_edge, long.exclude_solvent, long.mask_extend) == (5.0, False, None)  # bare: default

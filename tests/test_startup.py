"""Start-up (issue 13): ``occupy_relion --help`` and ``--version`` load none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

from occupy_relion.cli import HELP_DEFAULTS
from occupy_relion.job import JobOptions

HEAVY = ("numpy", "scipy", "pandas", "starfile", "matplotlib", "mrcfile")

#: runs the console entry point in a fresh interpreter, then prints the heavy top-level modules loaded
PROBE = """
import sys
from occupy_relion.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as done:
    code = done.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
print("HEAVY:" + ",".join(heavy))
sys.exit(code)
"""


def _loaded(*arguments: str) -> tuple[int, str, list[str]]:
    probe = f"HEAVY = {HEAVY!r}\n" + PROBE
    done = subprocess.run([sys.executable, "-c", probe, *arguments], capture_output=True, text=True, timeout=120)
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("HEAVY:"), done.stdout + done.stderr
    return done.returncode, done.stdout, [m for m in last[len("HEAVY:"):].split(",") if m]


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(flag):
    code, out, heavy = _loaded(flag)
    assert code == 0
    assert "occupy_relion" in out
    assert heavy == []


def test_importing_the_cli_imports_nothing_heavy():
    done = subprocess.run([sys.executable, "-c", "import sys, occupy_relion.cli; print(' '.join(sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert loaded.isdisjoint(HEAVY)


def test_a_bad_command_line_fails_without_the_job_s_libraries(tmp_path):
    code, _out, heavy = _loaded("--o", str(tmp_path / "nowhere") + "/", "--j", "zero")
    assert code == 1
    assert "matplotlib" not in heavy


def test_the_help_shows_the_defaults_the_job_uses():
    assert HELP_DEFAULTS == {"pivot": JobOptions.pivot, "scale_limit": JobOptions.scale_limit,
                             "max_gain": JobOptions.max_gain, "region_difference": JobOptions.region_difference}
    done = subprocess.run([sys.executable, "-m", "occupy_relion", "--help"], capture_output=True, text=True,
                          timeout=120)
    text = " ".join(done.stdout.split())
    assert f"(default {JobOptions.pivot})" in text
    assert f"(default {JobOptions.scale_limit})" in text
    assert f"(default {JobOptions.max_gain:g};" in text
    assert f"(default {JobOptions.region_difference})" in text
    assert "{" not in done.stdout


def test_the_report_s_process_is_forked_before_the_job_imports_its_libraries(tmp_path):
    """A job's command line: the report's child starts while the job has loaded none of its libraries
    (it imports matplotlib on the other core while the job imports numpy and scipy)."""
    probe = """
import sys
import occupy_relion.report.background as background
heavy = []
original = background._fork
def fork(*args):
    heavy.append("forked")
    heavy.extend(sorted({name.split(".")[0] for name in sys.modules} & {"numpy", "scipy", "pandas", "matplotlib"}))
    return original(*args)
background._fork = fork
from occupy_relion.cli import main
code = main(sys.argv[1:])
print("HEAVY AT FORK:" + ",".join(heavy))
sys.exit(code)
"""
    done = subprocess.run([sys.executable, "-c", probe, "--o", str(tmp_path / "job") + "/", "--in_3dref", "none.mrc"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "none.mrc" in done.stderr  # a bad input: the child was ended again
    assert done.stdout.strip().splitlines()[-1] == "HEAVY AT FORK:forked"

"""run.out and run.err: the same lines in the job directory, never twice."""

from __future__ import annotations

import io

from occupy_relion.job.log import JobLog


def test_lines_are_kept_in_the_job_directory_when_the_streams_go_elsewhere(tmp_path):
    out, err = io.StringIO(), io.StringIO()
    log = JobLog(out, err)
    log.say("before")  # before the job directory is known: the terminal only
    log.keep_in(tmp_path)
    log.say(" a line")
    log.warn("careful")
    log.error("ERROR: bad")
    log.close()
    assert out.getvalue() == "before\n a line\n WARNING: careful\n"
    assert err.getvalue() == "WARNING: careful\nERROR: bad\n"
    assert (tmp_path / "run.out").read_text() == " a line\n WARNING: careful\n"
    assert (tmp_path / "run.err").read_text() == "WARNING: careful\nERROR: bad\n"


def test_streams_that_already_are_the_files_are_not_copied(tmp_path):
    """RELION's `>> run.out 2>> run.err`: every line once."""
    with open(tmp_path / "run.out", "a") as out, open(tmp_path / "run.err", "a") as err:
        log = JobLog(out, err)
        log.keep_in(tmp_path)
        log.warn("once")
        log.close()
    assert (tmp_path / "run.out").read_text() == " WARNING: once\n"
    assert (tmp_path / "run.err").read_text() == "WARNING: once\n"


def test_a_rerun_appends(tmp_path):
    for run in (1, 2):
        log = JobLog(io.StringIO(), io.StringIO())
        log.keep_in(tmp_path)
        log.say(f"run {run}")
        log.close()
    assert (tmp_path / "run.out").read_text() == "run 1\nrun 2\n"

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


def _regions(occupancy_by_region, classes):
    import numpy as np

    from occupy_relion.regions import ClassCompleteness, Region, RegionAnalysis, RegionParameters
    from occupy_relion.result import RegionsResult

    regions = tuple(Region(n, 10, 5, 1234.4, (10.0, 20.0, 30.0), classes, occupancy, "a description")
                    for n, occupancy in enumerate(occupancy_by_region, start=1))
    completeness = tuple(ClassCompleteness(c, 1.0 - 0.1 * k, 0.9, 0.05 * k, k + 1) for k, c in enumerate(classes))
    analysis = RegionAnalysis(classes, (4, 4, 4), (2.0, 2.0, 2.0), np.ones((4, 4, 4), bool),
                              np.zeros((4, 4, 4), np.int16), regions, completeness, 0.8, 5000.0,
                              RegionParameters().resolved(8.0))
    masks = tuple(f"E/region{n:03d}_mask.mrc" for n in range(1, len(regions) + 1))
    return RegionsResult(analysis, masks, "E/variable_mask.mrc" if regions else None,
                         tuple((c, f"E/class{c:03d}_occupancy.mrc") for c in classes))


def test_the_regions_by_classes_table_and_one_edge_free_line_per_class():
    out = io.StringIO()
    JobLog(out, io.StringIO()).regions(_regions([(1.0, 0.02, 0.52)], (1, 2, 3)))
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(" regions: 1 region that differs between classes")
    assert all(f"class {n}" in lines[1] for n in (1, 2, 3)) and lines[1].endswith("description")
    assert lines[2].split()[:5] == ["1", "1234", "10,", "20,", "30"]
    assert lines[2].split()[5:8] == ["1.00", "0.02", "0.52"] and lines[2].endswith("a description")
    assert [line.split()[1] for line in lines[3:6]] == ["001:", "002:", "003:"]  # most complete first
    assert "completeness 1.000 (rank 1)" in lines[3] and "edge-free occupancy median 0.90" in lines[3]
    assert "E/variable_mask.mrc, E/region001_mask.mrc" in lines[6]


def test_no_region_and_one_map_alone_say_so():
    out = io.StringIO()
    log = JobLog(out, io.StringIO())
    log.regions(_regions([], (1, 2)))
    log.regions(_regions([(0.48,), (0.3,)], (1,)))
    text = out.getvalue()
    assert "0 regions that differ between classes" in text and "(no region: the occupancy is the same" in text
    assert "2 partial regions" in text

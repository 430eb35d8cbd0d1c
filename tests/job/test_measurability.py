"""A class that is pure noise (issue 9 item 4): a WARNING, "not measurable" numbers, never chosen."""

from __future__ import annotations

import numpy as np
import pytest
import starfile

from occupy_relion.core import Measurability
from occupy_relion.relion.summary import NOT_MEASURED, read_summary

from ..conftest import write_mrc
from .test_run import JOB, run
from .test_run import quick_report as quick_report  # a fixture, used by name


@pytest.mark.usefixtures("quick_report")
def test_a_noise_class_reads_not_measurable_and_is_never_chosen(synthetic_project, in_project, capsys):
    in_project(synthetic_project)
    noise = np.random.default_rng(3).standard_normal((40, 40, 40)).astype(np.float32)
    write_mrc(synthetic_project / "Class3D/job005/run_it020_class002.mrc", noise, 2.0)
    code, out, err = run(synthetic_project, "--in_parts", "Class3D/job005/run_it020_data.star", capsys=capsys)
    assert code == 0, err
    warnings = [line for line in out.splitlines() if "WARNING" in line and "class 002" in line]
    assert any("not measurable" in line for line in warnings), out
    assert not any("class 001: not measurable" in line for line in out.splitlines())
    assert "class 002 done in" in out and "not measurable: no molecule" in out
    general, classes = read_summary(synthetic_project / JOB / "occupancy.star")
    rows = classes.set_index("rlnClassNumber")
    assert rows.loc[2, "occupyMeasurability"] == Measurability.NO_MOLECULE.value
    assert rows.loc[1, "occupyMeasurability"] == Measurability.MEASURABLE.value
    for label in ("rlnAverageValue", "occupyMedianOccupancy", "occupyMoleculeScaleMedian", "occupyMoleculeScaleMean"):
        assert rows.loc[2, label] == NOT_MEASURED, label
    assert rows.loc[1, "rlnAverageValue"] > 0.5  # the real class is measured
    # a Scheme sorting by _rlnAverageValue picks class 1; the region tables do not list the noise class
    assert int(rows["rlnAverageValue"].idxmax()) == 1
    tables = starfile.read(synthetic_project / JOB / "occupancy.star", always_dict=True)
    regions = tables.get("occupancy_regions")
    if regions is not None and len(regions):
        assert 2 not in set(regions["rlnClassNumber"])
    assert "regions: class 002 not measurable: left out" in out


@pytest.mark.usefixtures("quick_report")
def test_a_lone_noise_map_succeeds_with_a_warning_and_reads_not_measurable(tmp_path, in_project, capsys):
    """The issue's white-noise map 'succeeded silently with median scale 1.00 and _rlnAverageValue 1'."""
    project = in_project(tmp_path)
    noise = np.random.default_rng(5).standard_normal((48, 48, 48)).astype(np.float32)
    write_mrc(project / "noise.mrc", noise, 2.0)
    code, out, err = run(project, "--in_3dref", "noise.mrc", capsys=capsys)
    assert code == 0, err
    assert "WARNING: class 001: not measurable" in out and "not measurable" in err
    _, classes = read_summary(project / JOB / "occupancy.star")
    row = classes.iloc[0]
    assert row["rlnAverageValue"] == NOT_MEASURED and row["occupyMoleculeScaleMedian"] == NOT_MEASURED
    assert row["occupyMeasurability"] == Measurability.NO_MOLECULE.value

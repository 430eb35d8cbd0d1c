"""The region step as the job runs it: synthetic projects with known per-domain occupancy written as a
RELION Class3D (or one map alone), run through the command line, checked in the files the job writes
(occupancy.star, masks, occupancy maps, node list, run.out)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

import occupy_relion.report as report_module
from occupy_relion.cli import main
from occupy_relion.relion import markers
from occupy_relion.relion.lock import LOCK_NAME
from occupy_relion.relion.summary import REGIONS_BLOCK, read_regions, read_summary, region_block

from ..conftest import write_model, write_mrc
from ..regions.conftest import (
    CLASS_OCCUPANCY,
    MODERATE_NOISE,
    NOISY,
    PIXEL_SIZE,
    SHAPE,
    SINGLE_NOISY,
    SINGLE_OCCUPANCY,
    Project,
    class_volumes,
)

JOB = "External/job012/"
#: a region's occupancy per class against the truth (issue 10)
OCCUPANCY_TOLERANCE = 0.08


@dataclass(frozen=True)
class Ran:
    """A project the job ran on: where, the truth, what it printed and what the report was given."""

    project: Path
    truth: Project
    out: str
    report_regions: object

    @property
    def job(self) -> Path:
        return self.project / JOB

    def summary(self):
        return read_summary(self.job / "occupancy.star")

    def regions(self):
        return read_regions(self.job / "occupancy.star")


def _truth(occupancy, noise, particle) -> Project:
    domains = tuple((tuple(float(c) for c in centre), particle.radius) for centre in particle.centres)
    return Project(tuple(occupancy), {}, {}, 0.0, 0.0, SHAPE, PIXEL_SIZE, particle, domains, noise)


def _run_job(root: Path, occupancy, noise: float, *arguments: str) -> Ran:
    """Write the project (a Class3D, or one map for --in_3dref), run the job in it, with a stand-in report."""
    volumes, particle = class_volumes(occupancy, noise, seed=0)
    names = []
    for number, volume in enumerate(volumes, start=1):
        name = f"Class3D/job005/run_it020_class{number:03d}.mrc"
        write_mrc(root / name, volume, PIXEL_SIZE)
        names.append(name)
    if len(volumes) > 1:
        write_model(root / "Class3D/job005/run_it020_model.star", names, [1 / len(names)] * len(names),
                    PIXEL_SIZE, SHAPE[0])
        (root / "Class3D/job005/run_it020_data.star").write_text("data_particles\n\nloop_\n_rlnClassNumber #1\n1\n")
        inputs = ["--in_parts", "Class3D/job005/run_it020_data.star"]
    else:
        inputs = ["--in_3dref", names[0]]
    given = []

    def fake_report(job_dir, run, classes, **kwargs):
        given.append(kwargs.get("regions"))
        return []

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        patch.setattr(report_module, "write_report", fake_report)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = main(["--o", JOB, *inputs, *arguments, "--j", "2"])
    assert code == 0, out.getvalue()
    return Ran(root, _truth(occupancy, noise, particle), out.getvalue(), given[0] if given else None)


_CLASS_RUNS: dict[float, Ran] = {}


def _classes_run(noise: float, factory) -> Ran:
    if noise not in _CLASS_RUNS:
        _CLASS_RUNS[noise] = _run_job(factory.mktemp("classes"), CLASS_OCCUPANCY, noise)
    return _CLASS_RUNS[noise]


@pytest.fixture(scope="module", params=[MODERATE_NOISE, NOISY], ids=lambda n: f"noise{n}")
def classes_run(request, tmp_path_factory) -> Ran:
    """Four classes (complete, lacking domain 4, domain 3 at half, domain 4 at half), each with its own
    reference for its maps (no --joint): the analysis normalises them by one common reference."""
    return _classes_run(request.param, tmp_path_factory)


@pytest.fixture(scope="module", params=[MODERATE_NOISE, SINGLE_NOISY], ids=lambda n: f"noise{n}")
def single_run(request, tmp_path_factory) -> Ran:
    """One map alone (--in_3dref): domain 2 at half, domain 4 at a quarter."""
    return _run_job(tmp_path_factory.mktemp("single"), SINGLE_OCCUPANCY, request.param)


def _mask(ran: Ran, name: str) -> np.ndarray:
    with mrcfile.open(ran.project / name, permissive=False) as mrc:
        assert float(mrc.voxel_size.x) == pytest.approx(PIXEL_SIZE)
        return np.asarray(mrc.data, dtype=np.float32)


def _matched(ran: Ran) -> dict[int, int]:
    """Variable domain → region number, from the regions' masks on disk: each mask lies in one domain
    (grown by the extension, soft edge and a domain's rim) and covers its core."""
    table = ran.regions()
    grown = ran.truth.domain_labels(SHAPE, PIXEL_SIZE, shrink=-12.0)
    inner = ran.truth.domain_labels(SHAPE, PIXEL_SIZE, shrink=3.0)
    matched = {}
    for number, name in table.groupby("occupyRegionNumber")["rlnMaskName"].first().items():
        inside = _mask(ran, name) >= 0.5
        counts = np.bincount(grown[inside], minlength=len(ran.truth.domains) + 1)[1:]
        domain = int(np.argmax(counts)) + 1
        assert counts.max() / inside.sum() >= 0.85, (number, counts)
        assert domain not in matched, f"two regions in domain {domain}"
        assert np.mean(inside[inner == domain]) >= 0.95, (number, domain)
        matched[domain] = int(number)
    return matched


# --- several classes -------------------------------------------------------------------------------


def test_regions_are_the_variable_domains_with_their_occupancy_in_every_class(classes_run):
    matched = _matched(classes_run)
    assert sorted(matched) == classes_run.truth.variable_domains() == [3, 4]
    table = classes_run.regions()
    assert list(table.columns[:4]) == ["occupyRegionNumber", "rlnClassNumber", "occupyRegionOccupancy", "rlnMaskName"]
    assert len(table) == 2 * 4  # one row per region and class
    for domain, number in matched.items():
        rows = table[table["occupyRegionNumber"] == number]
        assert list(rows["rlnClassNumber"]) == [1, 2, 3, 4]
        truth = [values[domain - 1] for values in CLASS_OCCUPANCY]
        np.testing.assert_allclose(rows["occupyRegionOccupancy"], truth, atol=OCCUPANCY_TOLERANCE,
                                   err_msg=f"domain {domain}")
        assert (rows["rlnMaskName"] == f"{JOB}region{number:03d}_mask.mrc").all()
        assert rows["occupyRegionVolume"].iloc[0] > 0 and rows["occupyRegionDescription"].iloc[0]
        # the region's own table, under labels a Scheme's operators can read
        own = starfile.read(classes_run.job / "occupancy.star", always_dict=True)[region_block(number)]
        np.testing.assert_allclose(own["rlnAverageValue"], rows["occupyRegionOccupancy"], atol=1e-5)
        assert list(own["rlnClassNumber"]) == [1, 2, 3, 4]


def test_the_complete_class_ranks_first(classes_run):
    general, classes = classes_run.summary()
    by_class = classes.set_index("rlnClassNumber")
    assert by_class.loc[1, "rlnAverageValue"] >= 0.9 and by_class.loc[1, "occupyCompletenessRank"] == 1
    assert int(by_class["rlnAverageValue"].idxmax()) == 1
    assert int(by_class["rlnAverageValue"].idxmin()) == 2  # lacks a whole domain
    assert general["occupyRanking"].split(",")[0] == "1"
    assert by_class.loc[1, "occupyMedianOccupancy"] >= 0.9 and by_class.loc[1, "occupyPartialFraction"] <= 0.05
    assert general["occupyAboutRlnAverageValue"].startswith("completeness")


def test_masks_cover_the_variable_domains_and_leave_the_constant_ones_alone(classes_run):
    variable = _mask(classes_run, JOB + "variable_mask.mrc")
    assert variable.shape == SHAPE and variable.min() >= 0 and variable.max() <= 1
    assert 0 < np.mean((variable > 0) & (variable < 1)) < 0.2  # a soft edge, as relion_mask_create's
    domains = classes_run.truth.domain_labels(SHAPE, PIXEL_SIZE)
    cores = classes_run.truth.domain_labels(SHAPE, PIXEL_SIZE, shrink=4.0)
    for domain in (3, 4):
        assert np.mean(variable[domains == domain] >= 0.5) >= 0.95, domain
    reach = 0.02 if classes_run.truth.noise <= MODERATE_NOISE else 0.1
    for domain in (1, 2):
        assert np.mean(variable[cores == domain] >= 0.5) <= reach, domain


def test_masks_are_3d_mask_nodes(classes_run):
    nodes = starfile.read(classes_run.job / markers.OUTPUT_NODES)
    types = dict(zip(nodes["rlnPipeLineNodeName"], nodes["rlnPipeLineNodeTypeLabel"]))
    integers = dict(zip(nodes["rlnPipeLineNodeName"], nodes["rlnPipeLineNodeType"]))  # no pipeline: both columns
    for name in ("variable_mask.mrc", "region001_mask.mrc", "region002_mask.mrc"):
        assert types[JOB + name] == "Mask3D.mrc" and integers[JOB + name] == 7
    assert JOB + "class001_occupancy.mrc" not in types


def test_occupancy_maps_are_on_the_analysis_grid_in_the_same_box(classes_run):
    general, classes = classes_run.summary()
    grid = tuple(int(n) for n in str(general["occupyRegionGridShape"]).split(","))
    table = classes_run.regions()
    for number in (1, 2, 3, 4):
        name = classes.set_index("rlnClassNumber").loc[number, "occupyOccupancyMap"]
        assert name == f"{JOB}class{number:03d}_occupancy.mrc"
        with mrcfile.open(classes_run.project / name) as mrc:
            data = np.asarray(mrc.data)
            assert data.shape == grid
            assert float(mrc.voxel_size.x) == pytest.approx(SHAPE[2] * PIXEL_SIZE / grid[2])
            assert float(mrc.header.cella.x) == pytest.approx(SHAPE[2] * PIXEL_SIZE)
        assert 0 <= data.min() and data.max() <= 1
        for value in table[table["rlnClassNumber"] == number]["occupyRegionOccupancy"]:
            assert np.any(np.isclose(data, value, atol=1e-5))  # each region reads its occupancy


def test_run_out_prints_the_regions_by_classes_table(classes_run):
    out = classes_run.out
    assert " regions: 2 regions that differ between classes" in out
    header = next(line for line in out.splitlines() if "volume Å³" in line)
    assert all(f"class {n}" in header for n in (1, 2, 3, 4))
    assert out.count(": completeness ") == 4 and " class 001: completeness " in out and "(rank 1)" in out
    assert "variable_mask.mrc" in out


def test_the_report_gets_the_regions(classes_run):
    found = classes_run.report_regions
    assert found is not None and len(found.region_masks) == 2 and found.view is not None
    assert found.variable_mask == JOB + "variable_mask.mrc"


def test_joint_normalisation_gives_the_same_analysis(tmp_path, tmp_path_factory):
    """With --joint the per-class maps use the common reference too: the regions are the same."""
    own = _classes_run(MODERATE_NOISE, tmp_path_factory)
    joint = _run_job(tmp_path, CLASS_OCCUPANCY, MODERATE_NOISE, "--joint", "yes")
    np.testing.assert_allclose(joint.regions()["occupyRegionOccupancy"], own.regions()["occupyRegionOccupancy"],
                               atol=1e-6)
    general, _ = joint.summary()
    assert general["occupyJointReference"] != "None"


# --- one map alone ---------------------------------------------------------------------------------


def test_one_map_alone_gives_its_partial_regions(single_run):
    matched = _matched(single_run)
    table = single_run.regions()
    assert set(table["rlnClassNumber"]) == {1}
    expected = [2, 4] if single_run.truth.noise <= MODERATE_NOISE else [2]  # see tests/regions
    assert sorted(matched) == expected
    for domain, number in matched.items():
        (occupancy,) = table[table["occupyRegionNumber"] == number]["occupyRegionOccupancy"]
        assert occupancy == pytest.approx(SINGLE_OCCUPANCY[0][domain - 1], abs=OCCUPANCY_TOLERANCE)
    _, classes = single_run.summary()
    assert classes["occupyCompletenessRank"][0] == 1 and 0 < classes["rlnAverageValue"][0] < 0.9
    assert (single_run.job / "variable_mask.mrc").is_file()
    assert " partial region" in single_run.out


# --- no analysis -----------------------------------------------------------------------------------


def test_resolution_mode_has_no_regions_and_a_rerun_leaves_none_of_the_earlier_run(tmp_path):
    occupancy = ((1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 1.0, 0.0))
    first = _run_job(tmp_path, occupancy, MODERATE_NOISE)
    assert (first.job / "region001_mask.mrc").is_file() and (first.job / "class002_occupancy.mrc").is_file()
    ran = _run_job(tmp_path, occupancy, MODERATE_NOISE, "--mode", "resolution")  # RELION's Continue: same directory
    _, classes = ran.summary()
    assert list(classes["rlnAverageValue"]) == [-1, -1]
    assert REGIONS_BLOCK not in starfile.read(ran.job / "occupancy.star", always_dict=True)
    assert not list(ran.job.glob("*_mask.mrc")) and not list(ran.job.glob("*_occupancy.mrc"))
    assert "regions: not analysed (the resolution mode" in ran.out


@pytest.mark.parametrize("option, value", [("--mask_extend", "-1"), ("--mask_soft_edge", "x"),
                                           ("--region_difference", "1.5")])
def test_a_bad_region_option_fails_naming_it(tmp_path, monkeypatch, capsys, option, value):
    monkeypatch.chdir(tmp_path)
    (tmp_path / JOB).mkdir(parents=True)
    code = main(["--o", JOB, "--in_3dref", "missing.mrc", option, value])
    err = capsys.readouterr().err
    assert code == 1 and f"ERROR: {option}:" in err
    written = sorted(p.name for p in (tmp_path / JOB).iterdir() if p.name not in ("run.out", "run.err", LOCK_NAME))
    assert written == [markers.FAILURE]

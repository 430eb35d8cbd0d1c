"""The committed example project (example_project/) is a consistent RELION project and the job runs on it."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import starfile

REPOSITORY = Path(__file__).resolve().parents[1]
EXAMPLE = REPOSITORY / "example_project"
#: what the README promises: the job's output where RELION would put the next job
NEXT_JOB = "External/job004/"
#: a committed project must stay small
MAX_COMMITTED_BYTES = 6_000_000


def _generator():
    """example_project/make_example.py as a module (its constants say what the project contains)."""
    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = _generator()
CLASS3D = EXAMPLE / "Class3D" / "job003"
ROOT = f"Class3D/job003/run_it{GENERATOR.ITERATIONS:03d}"


def test_last_iteration_files_are_there():
    for suffix in ("model.star", "data.star", "optimiser.star"):
        assert (EXAMPLE / f"{ROOT}_{suffix}").is_file(), suffix
    later = [p.name for p in CLASS3D.glob("run_it*_model.star")
             if int(re.search(r"run_it(\d+)_", p.name).group(1)) > GENERATOR.ITERATIONS]
    assert later == []
    for job in ("Import/job001", "Import/job002", "Class3D/job003"):
        assert (EXAMPLE / job / "job.star").is_file() and (EXAMPLE / job / "note.txt").is_file()
        assert (EXAMPLE / job / "RELION_JOB_EXIT_SUCCESS").is_file()


def test_model_lists_class_maps_that_exist_and_match_it():
    model = starfile.read(EXAMPLE / f"{ROOT}_model.star", always_dict=True)
    general, classes = model["model_general"], model["model_classes"]
    assert int(general["rlnNrClasses"]) == GENERATOR.CLASSES == len(classes)
    assert float(general["rlnPixelSize"]) == pytest.approx(GENERATOR.PIXEL_SIZE)
    assert classes["rlnClassDistribution"].sum() == pytest.approx(1.0, abs=1e-3)
    assert (classes["rlnClassDistribution"] > 0.1).all()  # every class attracted particles
    for number, name in enumerate(classes["rlnReferenceImage"], start=1):
        assert name == f"{ROOT}_class{number:03d}.mrc"
        with mrcfile.open(EXAMPLE / name, permissive=True) as mrc:
            assert mrc.data.shape == (GENERATOR.BOX,) * 3
            assert float(mrc.voxel_size.x) == pytest.approx(GENERATOR.PIXEL_SIZE, rel=1e-3)
            assert mrc.data.std() > 0
    optimiser = starfile.read(EXAMPLE / f"{ROOT}_optimiser.star", always_dict=True)["optimiser_general"]
    assert optimiser["rlnModelStarFile"] == f"{ROOT}_model.star"


def test_pipeline_registers_the_jobs_and_the_class3d_outputs():
    pipeline = starfile.read(EXAMPLE / "default_pipeline.star", always_dict=True)
    assert (EXAMPLE / "default_pipeline.star").read_text().lstrip().startswith("# version 30001")
    processes = pipeline["pipeline_processes"]
    assert list(processes["rlnPipeLineProcessName"]) == ["Import/job001/", "Import/job002/", "Class3D/job003/"]
    assert list(processes["rlnPipeLineProcessType"]) == [0, 0, 9]  # RELION 3.1: Import, Class3D
    assert (processes["rlnPipeLineProcessStatus"] == 2).all()  # Succeeded
    assert int(pipeline["pipeline_general"]["rlnPipeLineJobCounter"]) == 4  # the next job is job004
    outputs = pipeline["pipeline_output_edges"]
    produced = set(outputs.loc[outputs["rlnPipeLineEdgeProcess"] == "Class3D/job003/", "rlnPipeLineEdgeToNode"])
    expected = {f"{ROOT}_data.star", f"{ROOT}_model.star"}
    expected |= {f"{ROOT}_class{n:03d}.mrc" for n in range(1, GENERATOR.CLASSES + 1)}
    assert expected <= produced
    table = pipeline["pipeline_nodes"]
    nodes = dict(zip(table["rlnPipeLineNodeName"], table["rlnPipeLineNodeType"]))
    assert nodes[f"{ROOT}_data.star"] == 3  # particles: the GUI offers it as the External job's input
    inputs = pipeline["pipeline_input_edges"]
    assert set(inputs.loc[inputs["rlnPipeLineEdgeProcess"] == "Class3D/job003/", "rlnPipeLineEdgeFromNode"]) == {
        "Import/job001/particles.star", "Import/job002/consensus.mrc"}


def test_classification_separated_the_three_simulated_maps():
    particles = starfile.read(EXAMPLE / f"{ROOT}_data.star", always_dict=True)["particles"]
    assert len(particles) == GENERATOR.PARTICLES_PER_MAP * len(GENERATOR.VARIANTS)
    source = particles["rlnImageName"].str.extract(r"@Simulation/(\w+)\.mrcs", expand=False)
    counts = particles.groupby([source, particles["rlnClassNumber"]]).size().unstack(fill_value=0)
    assert set(counts.index) == {name for name, _ in GENERATOR.VARIANTS}
    dominant = counts.idxmax(axis=1)
    assert len(set(dominant)) == GENERATOR.CLASSES  # each simulated map has its own class
    assert counts.max(axis=1).sum() / len(particles) > 0.8


def test_committed_files_stay_small():
    if shutil.which("git") is None or not (REPOSITORY / ".git").exists():
        pytest.skip("needs git to see what .gitignore keeps out")
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "example_project"],
                            cwd=REPOSITORY, capture_output=True, text=True, check=True).stdout.split()
    files = [REPOSITORY / name for name in listed if (REPOSITORY / name).is_file()]
    names = {f.relative_to(EXAMPLE).as_posix() for f in files}
    assert f"{ROOT}_class001.mrc" in names and "default_pipeline.star" in names
    assert not any(name.endswith(".mrcs") for name in names)  # particle stacks are not committed
    assert not any(name.startswith("External/") for name in names)  # our job's output is not committed
    assert sum(f.stat().st_size for f in files) < MAX_COMMITTED_BYTES


def test_the_gui_sees_a_project_directory():
    """RELION's GUI asks "does not look like a RELION project directory" unless .gui_projectdir is there."""
    assert (EXAMPLE / ".gui_projectdir").is_file()
    if shutil.which("git") is None or not (REPOSITORY / ".git").exists():
        pytest.skip("needs git to see what is committed")
    committed = subprocess.run(["git", "ls-files", "example_project/.gui_projectdir"], cwd=REPOSITORY,
                               capture_output=True, text=True, check=True).stdout.split()
    assert committed == ["example_project/.gui_projectdir"]


def test_job_runs_on_a_copy_as_the_readme_says(tmp_path, monkeypatch):
    from occupy_relion.cli import main

    project = tmp_path / "example_project"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("External", "Simulation", "*.mrcs"))
    monkeypatch.chdir(project)
    assert main(["--o", NEXT_JOB, "--in_parts", f"{ROOT}_data.star", "--j", "2"]) == 0
    job = project / NEXT_JOB
    assert (job / "RELION_JOB_EXIT_SUCCESS").is_file()
    summary = starfile.read(job / "occupancy.star", always_dict=True)["occupancy_classes"]
    assert list(summary["rlnClassNumber"]) == list(range(1, GENERATOR.CLASSES + 1))
    for number in range(1, GENERATOR.CLASSES + 1):
        for kind in ("scale", "confidence", "equalised"):
            assert (job / f"class{number:03d}_{kind}.mrc").is_file()

    # The class maps stay in the simulation's frame, so the scale inside the variable domain can be
    # compared with the truth: ~1 in the class of "present", ~0 for "absent", ~0.5 for "partial".
    particles = starfile.read(project / f"{ROOT}_data.star", always_dict=True)["particles"]
    source = particles["rlnImageName"].str.extract(r"@Simulation/(\w+)\.mrcs", expand=False)
    majority = particles.groupby("rlnClassNumber")["rlnImageName"].agg(
        lambda names: source[names.index].value_counts().idxmax())
    expected = {"present": (0.8, 1.01), "absent": (-0.01, 0.2), "partial": (0.3, 0.7)}
    (centre, radius), cores = GENERATOR.DOMAINS[-1], GENERATOR.DOMAINS[:-1]
    for number, name in majority.items():
        with mrcfile.open(job / f"class{number:03d}_scale.mrc", permissive=True) as mrc:
            scale = mrc.data.copy()
        low, high = expected[name]
        assert low <= np.median(scale[ball(centre, radius - 5)]) <= high, (number, name)
        for core_centre, core_radius in cores:  # the other domains are always fully there
            assert np.median(scale[ball(core_centre, core_radius - 5)]) > 0.8, (number, name)

    # The regions (issue 10): one region, the variable domain, whose occupancy per class is the
    # simulation's (0.94 / 0.02 / 0.45 measured in the scale maps' domain cores); class 1 (present) ranks first.
    tables = starfile.read(job / "occupancy.star", always_dict=True)
    regions = tables["occupancy_regions"]
    assert set(regions["occupyRegionNumber"]) == {1}
    truth = {"present": 0.94, "absent": 0.02, "partial": 0.45}
    occupancy = dict(zip(regions["rlnClassNumber"], regions["occupyRegionOccupancy"]))
    for number, name in majority.items():
        assert occupancy[number] == pytest.approx(truth[name], abs=0.08), (number, name, occupancy)
    with mrcfile.open(job / "region001_mask.mrc", permissive=True) as mrc:
        mask = mrc.data.copy()
    assert np.mean(mask[ball(centre, radius)] >= 0.5) >= 0.9  # the mask holds the variable domain
    for core_centre, core_radius in cores:
        assert np.mean(mask[ball(core_centre, core_radius - 5)] >= 0.5) <= 0.02
    completeness = summary.set_index("rlnClassNumber")["rlnAverageValue"]
    present = int(majority[majority == "present"].index[0])
    assert int(completeness.idxmax()) == present and completeness[present] >= 0.9
    assert int(summary.set_index("rlnClassNumber").loc[present, "occupyCompletenessRank"]) == 1


def ball(centre, radius) -> np.ndarray:
    """Voxels within ``radius`` Å of ``centre`` (Å, x/y/z from the box centre) in the example's box."""
    box, pixel = GENERATOR.BOX, GENERATOR.PIXEL_SIZE
    z, y, x = (np.indices((box,) * 3, dtype=np.float32) - box // 2) * pixel
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius ** 2


def test_readme_starts_with_the_two_set_up_commands():
    """The first code block is run as written on a fresh headless machine: only the two set-up commands,
    the first of them the job this module runs (viewers such as xdg-open or chimerax are hints below it)."""
    text = (REPOSITORY / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```bash\n(.*?)```", text, re.DOTALL).group(1).strip().splitlines()
    assert len(block) == 2, block
    install, tests = block
    assert install.startswith("pip install . && cd example_project && occupy_relion ")
    assert f"--o {NEXT_JOB} --in_parts {ROOT}_data.star" in install and install.endswith("&& cd ..")
    assert tests == 'pip install ".[test]" && python -m pytest -q'

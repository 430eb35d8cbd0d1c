"""write_report: the PDF's pages, atomic writing, the job's view of the files; the summary step."""

from __future__ import annotations

import os
import stat
from dataclasses import replace

import matplotlib
import numpy as np
import pytest
from pypdf import PdfReader

import occupy_relion.report.chimerax as chimerax_module
import occupy_relion.report.pdf as pdf_module
from occupy_relion.atomic import TEMP_PREFIX
from occupy_relion.report import write_report
from occupy_relion.report.summary import CONTOUR_SIGMAS, SCALE_BINS, solvent_noise_sd
from occupy_relion.result import ScaleHistogram
from occupy_relion.synthetic import noisy_map, render

from .conftest import BOX, JOB, OCCUPANCIES, PIXEL, run_description


def _pages(path) -> int:
    return len(PdfReader(str(path)).pages)


@pytest.mark.parametrize("joint, expected", [(False, 4), (True, 5)])
def test_pdf_has_one_page_per_class_plus_summary_and_joint(project, results, joint, expected):
    run = run_description(joint, 0.5 if joint else None)
    written = write_report(project / JOB, run, results, project_dir=project)
    assert [p.name for p in written] == ["logfile.pdf", "occupy.cxc"]
    assert _pages(project / JOB / "logfile.pdf") == expected
    metadata = PdfReader(str(project / JOB / "logfile.pdf")).metadata
    assert metadata.get("/Creator") == "occupy_relion"


def test_pdf_shows_the_results_numbers(project, results):
    """The class table and the class pages print the results' own numbers (not recomputed ones)."""
    write_report(project / JOB, run_description(), results, project_dir=project)
    pages = [page.extract_text() for page in PdfReader(str(project / JOB / "logfile.pdf")).pages]
    for result in results:
        assert f"{result.statistics.scale_median:.3f}" in pages[0]
        assert f"{100 * result.view.molecule_fraction:.1f}" in pages[0]
        assert result.settings.noise_floor_source.label in pages[result.number]
    assert "box outside the flattened solvent" not in pages[1]  # no flattened solvent in these maps


def test_a_class_page_says_when_its_noise_did_not_come_from_half_maps(project, results):
    """Without half maps weak density reads high (README: what it does not get right yet): the class page
    says so; with a noise map from half maps it does not."""
    from occupy_relion.core import NoiseFloorSource

    first = replace(results[0], settings=replace(results[0].settings, noise_floor_source=NoiseFloorSource.NOISE_MAP))
    write_report(project / JOB, run_description(), [first, *results[1:]], project_dir=project)
    pages = [" ".join(page.extract_text().split()) for page in PdfReader(str(project / JOB / "logfile.pdf")).pages]
    assert results[1].settings.noise_floor_source is not NoiseFloorSource.NOISE_MAP
    assert "No half maps" not in pages[first.number]
    assert "No half maps: the noise in the molecule is taken from the solvent" in pages[results[1].number]
    assert "weak density reads high" in pages[results[1].number]


def test_pdf_with_no_class_has_the_summary_page_only(project):
    write_report(project / JOB, run_description(), [], project_dir=project)
    assert _pages(project / JOB / "logfile.pdf") == 1
    write_report(project / JOB, run_description(joint=True), [], project_dir=project)
    assert _pages(project / JOB / "logfile.pdf") == 2
    assert "nothing to show" in (project / JOB / "occupy.cxc").read_text()


def test_class_without_molecule_still_gets_its_pages(project, results):
    """An empty molecule (no voxel of confidence ≥ 0.5): its page says so, the joint page leaves it out."""
    empty = ScaleHistogram(edges=np.linspace(0, 1, SCALE_BINS + 1), percent=np.zeros(SCALE_BINS), percentiles=None)
    bare = replace(results[0], number=4, statistics=replace(results[0].statistics, molecule_voxels=0),
                   view=replace(results[0].view, scale=empty))
    write_report(project / JOB, run_description(joint=True, reference=0.5), [bare], project_dir=project)
    pages = PdfReader(str(project / JOB / "logfile.pdf")).pages
    assert len(pages) == 3
    assert "no molecule voxels" in pages[1].extract_text()
    assert "no class has molecule voxels" in pages[2].extract_text()


def test_classes_are_ordered_by_number(project, results, run):
    write_report(project / JOB, run, list(reversed(results)), project_dir=project)
    script = (project / JOB / "occupy.cxc").read_text()
    assert script.index('name "class 1"') < script.index('name "class 2"') < script.index('name "class 3"')


def test_report_leaves_matplotlib_global_state_alone(project, results, run):
    backend = matplotlib.get_backend()
    font_size = matplotlib.rcParams["font.size"]
    matplotlib.rcParams["font.size"] = 13.0
    try:
        write_report(project / JOB, run, results[:1], project_dir=project)
        assert matplotlib.get_backend() == backend
        assert matplotlib.rcParams["font.size"] == 13.0
    finally:
        matplotlib.rcParams["font.size"] = font_size


def test_files_are_readable_by_the_group(project, results, run):
    """Temporary files must not keep a private (0600) mode once they are moved into place."""
    old = os.umask(0o022)
    try:
        write_report(project / JOB, run, results[:1], project_dir=project)
    finally:
        os.umask(old)
    for name in ("logfile.pdf", "occupy.cxc"):
        mode = stat.S_IMODE((project / JOB / name).stat().st_mode)
        assert mode & 0o044 == 0o044, oct(mode)


# ---- atomic writing -----------------------------------------------------------------------------


def _job_files(project):
    return sorted(p.name for p in (project / JOB).iterdir())


def test_failure_while_rendering_leaves_no_partial_pdf(project, results, run, monkeypatch):
    before = _job_files(project)

    def half_a_pdf(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"%PDF-1.4\n% half a page")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pdf_module, "render_pdf", half_a_pdf)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(project / JOB, run, results, project_dir=project)
    assert _job_files(project) == before  # no logfile.pdf, no occupy.cxc, no temporary file


def test_failure_after_the_pdf_keeps_the_previous_report(project, results, run, monkeypatch):
    write_report(project / JOB, run, results[:1], project_dir=project)
    old_pdf = (project / JOB / "logfile.pdf").read_bytes()
    old_script = (project / JOB / "occupy.cxc").read_text()
    before = _job_files(project)

    def broken(*args, **kwargs):
        raise ValueError("no script today")

    monkeypatch.setattr(chimerax_module, "chimerax_script", broken)
    with pytest.raises(ValueError):
        write_report(project / JOB, run, results, project_dir=project)
    assert _job_files(project) == before
    assert (project / JOB / "logfile.pdf").read_bytes() == old_pdf
    assert (project / JOB / "occupy.cxc").read_text() == old_script
    assert _pages(project / JOB / "logfile.pdf") == 2


def test_interrupt_while_rendering_leaves_nothing(project, results, run, monkeypatch):
    """An abort (KeyboardInterrupt / SystemExit from the job's check) also cleans up."""
    real = pdf_module.render_pdf

    def interrupted(path, *args, **kwargs):
        real(path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pdf_module, "render_pdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(project / JOB, run, results, project_dir=project)
    left = _job_files(project)
    assert not any(name.startswith(TEMP_PREFIX) for name in left), left
    assert "logfile.pdf" not in left and "occupy.cxc" not in left


# ---- the summary step ---------------------------------------------------------------------------


def test_view_holds_small_arrays_and_the_results_numbers(results, processed):
    for result, (volume, p) in zip(results, processed):
        slices = result.view.slices
        for planes in (slices.input, slices.scale, slices.equalised, slices.confidence):
            assert [s.shape for s in planes] == [(BOX, BOX)] * 3
            assert all(s.dtype == np.float32 for s in planes)
        np.testing.assert_array_equal(slices.input[0], volume[BOX // 2])
        np.testing.assert_array_equal(slices.scale[2], p.maps["scale"][:, :, BOX // 2])
        assert result.view.box_shape == (BOX, BOX, BOX)
        assert result.view.scale.percent.sum() == pytest.approx(100)
        percentiles = result.view.scale.percentiles
        assert np.all(np.diff(percentiles) >= 0)
        assert percentiles[2] == pytest.approx(result.statistics.scale_median, abs=1e-6)
        assert result.view.molecule_fraction == pytest.approx(result.statistics.molecule_voxels / BOX ** 3)


def test_contour_is_three_noise_sd_above_the_solvent(processed):
    """Against the known noise of the synthetic maps: level ≈ solvent (0) + 3 × the true noise sd."""
    for number, (volume, p) in enumerate(processed, start=1):
        _same, particle = noisy_map((BOX,) * 3, PIXEL, 0.5, OCCUPANCIES[number - 1], seed=10 + number)
        true_sd = float(np.std(volume - render(particle, (BOX,) * 3, PIXEL)))  # the noise that was added
        view = p.result.view
        assert view.contour_basis == "solvent noise sd"
        assert view.noise_sd == pytest.approx(true_sd, rel=0.1)
        assert view.contour_level == pytest.approx(CONTOUR_SIGMAS * true_sd, rel=0.1, abs=0.05 * true_sd)


def test_contour_is_above_the_solvent_and_below_the_full_domain(processed):
    """3 sd over the solvent: almost no solvent voxel, most of the fully occupied density."""
    for volume, p in processed:
        solvent = p.maps["confidence"] < 0.01
        assert np.mean(volume[solvent] > p.result.view.contour_level) < 0.01
        assert p.result.view.contour_level < np.percentile(volume, 99.9)


def test_noise_sd_is_robust_to_density_and_flattened_solvent():
    rng = np.random.default_rng(3)
    volume = rng.normal(0.0, 2.0, (40, 40, 40)).astype(np.float32)
    confidence = np.zeros_like(volume)
    volume[:5] += 50.0  # "molecule" the confidence missed: only values below the mean are used
    volume[-10:] = 0.0  # masked (flattened) solvent: left out
    assert solvent_noise_sd(volume, confidence, mean=0.0) == pytest.approx(2.0, rel=0.05)
    assert solvent_noise_sd(volume, confidence) == pytest.approx(2.0, rel=0.15)  # median as the centre
    assert solvent_noise_sd(volume, np.ones_like(volume)) is None  # no solvent at all


def test_noise_sd_leaves_out_a_soft_masks_fall_off():
    """A soft mask damps the noise outside the particle (no exact constant): without the core's
    no-data map the sd came out a third of the real noise's (RELION 3.1 Refine3D map: 0.00068 against
    0.00204) and the ChimeraX contour drew the noise."""
    rng = np.random.default_rng(4)
    volume = rng.normal(0.0, 2.0, (48, 48, 48)).astype(np.float32)
    volume[24:] *= np.float32(0.02)  # the fall-off: damped noise, half the box
    confidence = np.zeros_like(volume)
    no_data = np.zeros((32, 32, 32), dtype=bool)  # a coarser working grid over the same box
    no_data[16:] = True
    assert solvent_noise_sd(volume, confidence, mean=0.0) < 1.0
    assert solvent_noise_sd(volume, confidence, 0.0, no_data) == pytest.approx(2.0, rel=0.05)


# ---------------------------------------------------------------------------------------------
# with the region analysis (the example project: domain 4 present / absent / half)


def test_pdf_with_regions_answers_first_then_compares(example_regions):
    p = example_regions
    write_report(p.root / p.job, run_description(), p.results, project_dir=p.root, regions=p.regions)
    reader = PdfReader(str(p.root / p.job / "logfile.pdf"))
    assert len(reader.pages) == 2 + 1 + len(p.results)
    pages = [page.extract_text() for page in reader.pages]
    analysis = p.regions.analysis
    first = pages[0]
    assert "Occupancy of each region in each class" in first
    region = analysis.regions[0]
    for value in region.occupancy:  # the table prints the analysis' own numbers
        assert f"{value:.2f}" in first
    for c in analysis.completeness:
        assert f"{c.completeness:.2f}" in first
    assert region.description in first
    assert "Classes side by side" in pages[1]
    # the run page lists the edge-free numbers, not the whole-molecule medians
    third = pages[2]
    for result in p.results:
        assert f"{analysis.completeness_of(result.number).completeness:.3f}" in third
        assert f"{result.statistics.scale_median:.3f}" not in third


def test_pdf_with_regions_ranks_the_complete_class_first(example_regions):
    """On the example project the present class is the most complete, and the table says so."""
    analysis = example_regions.regions.analysis
    assert analysis.ranked_classes[0] == 1
    region = analysis.regions[0]
    assert region.occupancy_of(1) >= 0.85 and region.occupancy_of(2) <= 0.15
    assert abs(region.occupancy_of(3) - 0.5) <= 0.1


def test_pdf_without_regions_says_so(project, results):
    write_report(project / JOB, run_description(), results, project_dir=project, regions=None)
    reader = PdfReader(str(project / JOB / "logfile.pdf"))
    assert len(reader.pages) == 1 + len(results)
    assert "No region analysis" in reader.pages[0].extract_text()


def test_regions_view_holds_small_planes_of_every_class(example_regions):
    """One plane per region through its centre and three comparison planes, cropped to the molecule;
    the region's voxels in its plane read its occupancy in every class."""
    view, analysis = example_regions.regions.view, example_regions.regions.analysis
    assert view.classes == analysis.classes and view.full_level == analysis.full_level
    assert len(view.regions) == len(analysis.regions) == 1
    assert [s.plane for s in view.comparison] == ["xy", "xz", "yz"]
    for s in (*view.regions, *view.comparison):
        assert len(s.occupancy) == 3
        assert all(o.shape == s.labels.shape == s.molecule.shape and o.dtype == np.float32 for o in s.occupancy)
        assert s.labels.size < 0.5 * analysis.shape[1] * analysis.shape[2]  # cropped
        inside = s.labels == 1
        assert inside.sum() > 20
        medians = [float(np.median(o[inside])) for o in s.occupancy]
        assert medians[0] > 0.7 and medians[1] < 0.15 and 0.3 < medians[2] < 0.7, medians


def test_pdf_with_an_analysis_without_regions(example_regions):
    """No region found (classes alike, or a map alone without partial part): the table says so and the
    pages still draw (the molecule instead of a region)."""
    p = example_regions
    analysis = replace(p.regions.analysis, regions=(), labels=np.zeros_like(p.regions.analysis.labels))
    view = replace(p.regions.view, regions=(),
                   comparison=tuple(replace(s, labels=np.zeros_like(s.labels)) for s in p.regions.view.comparison))
    regions = replace(p.regions, analysis=analysis, view=view, region_masks=(), variable_mask=None)
    write_report(p.root / p.job, run_description(), p.results, project_dir=p.root, regions=regions)
    reader = PdfReader(str(p.root / p.job / "logfile.pdf"))
    assert len(reader.pages) == 2 + 1 + len(p.results)
    assert "No region differs in occupancy between the classes" in reader.pages[0].extract_text()
    script = (p.root / p.job / "occupy.cxc").read_text()
    assert "No region differs in occupancy between the classes." in script
    assert "_mask.mrc" not in script


def test_pdf_says_what_was_left_out_of_the_molecule(example_regions):
    """Weak density absent in every class and scattered noise blobs are no region and no molecule: the
    first page says how much of each was left out (run.out says it too)."""
    p = example_regions
    analysis = replace(p.regions.analysis, weak_volume_A3=29484.0, scattered_volume_A3=52902.0)
    write_report(p.root / p.job, run_description(), p.results, project_dir=p.root,
                 regions=replace(p.regions, analysis=analysis))
    first = PdfReader(str(p.root / p.job / "logfile.pdf")).pages[0].extract_text()
    assert "Left out of the molecule" in first and "29.5 nm³" in first and "52.9 nm³" in first

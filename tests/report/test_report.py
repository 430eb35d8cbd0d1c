"""write_report: the PDF's pages, atomic writing, the job's view of the files; summarise_class."""

from __future__ import annotations

import os
import stat

import matplotlib
import numpy as np
import pytest
from pypdf import PdfReader

import occupy_relion.report as report
import occupy_relion.report.chimerax as chimerax_module
import occupy_relion.report.pdf as pdf_module
from occupy_relion.report import CONTOUR_SIGMAS, ClassSummary, solvent_noise_sd, write_report

BOX = 48  # as in conftest.py
JOB = "External/job012"


def _pages(path) -> int:
    return len(PdfReader(str(path)).pages)


@pytest.mark.parametrize("joint, expected", [(False, 4), (True, 5)])
def test_pdf_has_one_page_per_class_plus_summary_and_joint(project, summaries, run_info, joint, expected):
    written = write_report(project / JOB, run_info, summaries, joint=joint, project_dir=project)
    assert [p.name for p in written] == ["logfile.pdf", "occupy.cxc"]
    assert _pages(project / JOB / "logfile.pdf") == expected
    metadata = PdfReader(str(project / JOB / "logfile.pdf")).metadata
    assert metadata.get("/Creator") == "occupy_relion"


def test_pdf_with_no_class_has_the_summary_page_only(project, run_info):
    write_report(project / JOB, run_info, [], joint=False, project_dir=project)
    assert _pages(project / JOB / "logfile.pdf") == 1
    write_report(project / JOB, run_info, [], joint=True, project_dir=project)
    assert _pages(project / JOB / "logfile.pdf") == 2
    assert "nothing to show" in (project / JOB / "occupy.cxc").read_text()


def test_hand_made_summary_without_optional_fields(project, run_info):
    """Only the required fields: no slices, histograms or statistics; still one page per class."""
    bare = ClassSummary(number=4, input_path="Class3D/job008/run_it025_class004.mrc", scale_path="",
                        confidence_path="", equalised_path="", distribution=None, resolution=None, pixel_size=1.0)
    write_report(project / JOB, run_info, [bare], joint=True, project_dir=project)
    assert _pages(project / JOB / "logfile.pdf") == 3


def test_classes_are_ordered_by_number(project, summaries, run_info):
    write_report(project / JOB, run_info, list(reversed(summaries)), project_dir=project)
    script = (project / JOB / "occupy.cxc").read_text()
    assert script.index('name "class 1"') < script.index('name "class 2"') < script.index('name "class 3"')


def test_report_leaves_matplotlib_global_state_alone(project, summaries, run_info):
    backend = matplotlib.get_backend()
    font_size = matplotlib.rcParams["font.size"]
    matplotlib.rcParams["font.size"] = 13.0
    try:
        write_report(project / JOB, run_info, summaries[:1], project_dir=project)
        assert matplotlib.get_backend() == backend
        assert matplotlib.rcParams["font.size"] == 13.0
    finally:
        matplotlib.rcParams["font.size"] = font_size


def test_files_are_readable_by_the_group(project, summaries, run_info):
    """Temporary files must not keep a private (0600) mode once they are moved into place."""
    old = os.umask(0o022)
    try:
        write_report(project / JOB, run_info, summaries[:1], project_dir=project)
    finally:
        os.umask(old)
    for name in ("logfile.pdf", "occupy.cxc"):
        mode = stat.S_IMODE((project / JOB / name).stat().st_mode)
        assert mode & 0o044 == 0o044, oct(mode)


# ---- atomic writing -----------------------------------------------------------------------------


def _job_files(project):
    return sorted(p.name for p in (project / JOB).iterdir())


def test_failure_while_rendering_leaves_no_partial_pdf(project, summaries, run_info, monkeypatch):
    before = _job_files(project)

    def half_a_pdf(path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"%PDF-1.4\n% half a page")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pdf_module, "render_pdf", half_a_pdf)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(project / JOB, run_info, summaries, project_dir=project)
    assert _job_files(project) == before  # no logfile.pdf, no occupy.cxc, no temporary file


def test_failure_after_the_pdf_keeps_the_previous_report(project, summaries, run_info, monkeypatch):
    write_report(project / JOB, run_info, summaries[:1], project_dir=project)
    old_pdf = (project / JOB / "logfile.pdf").read_bytes()
    old_script = (project / JOB / "occupy.cxc").read_text()
    before = _job_files(project)

    def broken(*args, **kwargs):
        raise ValueError("no script today")

    monkeypatch.setattr(chimerax_module, "chimerax_script", broken)
    with pytest.raises(ValueError):
        write_report(project / JOB, run_info, summaries, project_dir=project)
    assert _job_files(project) == before
    assert (project / JOB / "logfile.pdf").read_bytes() == old_pdf
    assert (project / JOB / "occupy.cxc").read_text() == old_script
    assert _pages(project / JOB / "logfile.pdf") == 2


def test_interrupt_while_rendering_leaves_nothing(project, summaries, run_info, monkeypatch):
    """An abort (KeyboardInterrupt / SystemExit from the job's check) also cleans up."""
    real = pdf_module.render_pdf

    def interrupted(path, *args, **kwargs):
        real(path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(pdf_module, "render_pdf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_report(project / JOB, run_info, summaries, project_dir=project)
    assert not any(name.endswith(".tmp") or name in ("logfile.pdf", "occupy.cxc") for name in _job_files(project))


# ---- summarise_class ----------------------------------------------------------------------------


def test_summary_holds_small_arrays_and_consistent_numbers(summaries, processed):
    for summary, p in zip(summaries, processed):
        for slices in (summary.input_slices, summary.scale_slices, summary.equalised_slices,
                       summary.confidence_slices):
            assert [s.shape for s in slices] == [(BOX, BOX)] * 3
            assert all(s.dtype == np.float32 for s in slices)
        np.testing.assert_array_equal(summary.input_slices[0], p.volume[BOX // 2])
        np.testing.assert_array_equal(summary.scale_slices[2], p.estimate.scale[:, :, BOX // 2])
        assert summary.box_shape == (BOX, BOX, BOX)
        assert summary.scale_histogram.sum() == p.statistics["molecule_voxels"]
        percentiles = summary.scale_percentiles
        assert np.all(np.diff(percentiles) >= 0)
        assert percentiles[2] == pytest.approx(p.statistics["scale_median"], abs=1e-6)
        assert summary.contour_level == pytest.approx(
            summary.settings["solvent_mean"] + CONTOUR_SIGMAS * summary.noise_sd)


def test_contour_is_above_the_solvent_and_below_the_full_domain(summaries, processed):
    """3 sd over the solvent: almost no solvent voxel, most of the fully occupied density."""
    for summary, p in zip(summaries, processed):
        solvent = p.estimate.confidence < 0.01
        assert np.mean(p.volume[solvent] > summary.contour_level) < 0.01
        assert summary.contour_level < np.percentile(p.volume, 99.9)


def test_noise_sd_is_robust_to_density_and_flattened_solvent():
    rng = np.random.default_rng(3)
    volume = rng.normal(0.0, 2.0, (40, 40, 40)).astype(np.float32)
    confidence = np.zeros_like(volume)
    volume[:5] += 50.0  # "molecule" the confidence missed: only values below the mean are used
    volume[-10:] = 0.0  # masked (flattened) solvent: left out
    assert solvent_noise_sd(volume, confidence, mean=0.0) == pytest.approx(2.0, rel=0.05)
    assert solvent_noise_sd(volume, confidence) == pytest.approx(2.0, rel=0.15)  # median as the centre
    assert solvent_noise_sd(volume, np.ones_like(volume)) is None  # no solvent at all


def test_report_api_keeps_its_names():
    for name in ("ClassSummary", "central_slices", "summarise_class", "write_report"):
        assert hasattr(report, name)

"""The report drawn in a child process while the classes are computed (report/background.py)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

import occupy_relion.report as report_module
from occupy_relion.errors import JobAborted
from occupy_relion.report import write_report
from occupy_relion.report.background import BackgroundReport, PagePlan, start

from .conftest import run_description

pytestmark = pytest.mark.skipif(not BackgroundReport.available(), reason="needs fork")


DRAWN_AT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


def _texts(path: Path) -> list[str]:
    """Each page's text without the line that holds the drawing time."""
    return ["\n".join(line for line in page.extract_text().splitlines() if not DRAWN_AT.search(line))
            for page in PdfReader(str(path)).pages]


def _plan(results, regions: bool = False, joint: bool = False) -> PagePlan:
    return PagePlan(regions=regions, classes=tuple(r.number for r in results), joint=joint)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".occupy-tmp"))


def test_plan_numbers_the_pages_like_the_report():
    plan = PagePlan(regions=True, classes=(1, 2, 4), joint=True)
    assert plan.pages == 2 + 1 + 3 + 1
    assert [plan.class_page(n) for n in (1, 2, 4)] == [4, 5, 6]
    alone = PagePlan(regions=False, classes=(3,), joint=False)
    assert alone.pages == 2 and alone.class_page(3) == 2


@pytest.mark.parametrize("joint", [False, True])
def test_pages_drawn_early_make_the_same_report(project, results, job, joint, monkeypatch):
    monkeypatch.chdir(project)
    run = run_description(joint=joint, reference=0.5 if joint else None)
    expected = write_report(job, run, results, into=Path("expected"))[0]
    drawer = BackgroundReport(Path(job), _plan(results, joint=joint))
    lines: list[str] = []
    try:
        for r in results[:2]:  # the last class is sent with the request, as when the job finishes it last
            drawer.add(r)
        paths = drawer.finish(run, results, None, Path(job) / ".staging", lines.append, lambda: None)
    finally:
        drawer.close()
    assert [p.name for p in paths] == ["logfile.pdf", "occupy.cxc"]
    assert _texts(paths[0]) == _texts(expected)
    pages = len(results) + 1 + joint
    assert sorted(drawer.drawn) == sorted(
        [f"page {2 + k} of {pages} (class {r.number:03d})" for k, r in enumerate(results)]
        + [f"page 1 of {pages} (the run)"] + ([f"page {pages} of {pages} (joint)"] if joint else []))
    assert lines  # progress while it waited
    assert (paths[1]).read_text() == (Path("expected") / "occupy.cxc").read_text()
    assert _leftovers(Path(job)) == []


def test_the_rest_of_the_pages_is_drawn_before_the_report_is_asked_for(project, results, job, monkeypatch):
    """With every class and the regions known (``rest``), the run page is drawn while the job writes its
    last files; the report asked for afterwards is the same as one drawn at the end."""
    monkeypatch.chdir(project)
    run = run_description()
    expected = write_report(job, run, results, into=Path("expected"))[0]
    drawer = BackgroundReport(Path(job), _plan(results))
    pages = len(results) + 1
    try:
        for r in results:
            drawer.add(r)
        drawer.rest(run, results, None)
        deadline = time.monotonic() + 60
        while f"page 1 of {pages} (the run)" not in drawer.drawn and time.monotonic() < deadline:
            drawer.pages_drawn()
            time.sleep(0.05)
        assert f"page 1 of {pages} (the run)" in drawer.drawn  # before the report was asked for
        paths = drawer.finish(run, results, None, Path(job) / ".staging", lambda _: None, lambda: None)
    finally:
        drawer.close()
    assert _texts(paths[0]) == _texts(expected)
    assert "every page drawn" not in drawer.drawn and _leftovers(Path(job)) == []


def test_a_report_finished_for_another_run_than_its_rest_is_drawn_again(project, results, job, monkeypatch):
    monkeypatch.chdir(project)
    first, finished = run_description(), run_description(joint=False, reference=None)
    finished = type(finished)(**{**finished.__dict__, "command_line": "occupy_relion --o other/"})
    expected = write_report(job, finished, results, into=Path("expected"))[0]
    drawer = BackgroundReport(Path(job), _plan(results))
    try:
        for r in results:
            drawer.add(r)
        drawer.rest(first, results, None)
        paths = drawer.finish(finished, results, None, Path(job) / ".staging", lambda _: None, lambda: None)
    finally:
        drawer.close()
    assert _texts(paths[0]) == _texts(expected)
    assert "every page drawn" in drawer.drawn


def test_a_run_unlike_the_plan_is_drawn_again_in_order(project, results, job, monkeypatch):
    monkeypatch.chdir(project)
    run = run_description()
    expected = write_report(job, run, results[:2], into=Path("expected"))[0]
    drawer = BackgroundReport(Path(job), _plan(results, regions=True))  # expected regions and 3 classes
    try:
        for r in results:
            drawer.add(r)
        paths = drawer.finish(run, results[:2], None, Path(job) / ".staging", lambda _: None, lambda: None)
    finally:
        drawer.close()
    assert len(PdfReader(str(paths[0])).pages) == 3
    assert _texts(paths[0]) == _texts(expected)
    assert "every page drawn" in drawer.drawn
    assert _leftovers(Path(job)) == []


def test_the_report_s_failure_reaches_the_job(project, results, job, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.chdir(project)
    monkeypatch.setattr(report_module, "write_report", broken)  # before the fork: the child has it too
    drawer = BackgroundReport(Path(job), _plan(results))
    try:
        with pytest.raises(RuntimeError, match="matplotlib exploded"):
            drawer.finish(run_description(), results, None, Path(job) / ".staging", lambda _: None, lambda: None)
    finally:
        drawer.close()
    assert not (Path(job) / ".staging" / "logfile.pdf").exists()


def test_an_abort_while_waiting_ends_the_child(project, results, job, monkeypatch):
    def slow(*args, **kwargs):
        time.sleep(30)
        return []

    monkeypatch.chdir(project)
    monkeypatch.setattr(report_module, "write_report", slow)
    drawer = BackgroundReport(Path(job), _plan(results))
    asked = []

    def check():
        asked.append(1)
        if len(asked) > 3:
            raise JobAborted("RELION_JOB_ABORT_NOW found")

    started = time.monotonic()
    try:
        with pytest.raises(JobAborted):
            drawer.finish(run_description(), results, None, Path(job) / ".staging", lambda _: None, check)
    finally:
        drawer.close()
    assert time.monotonic() - started < 10
    assert not drawer._process.is_alive()
    assert _leftovers(Path(job)) == []


def test_a_replaced_report_writer_is_called_in_the_job(project, job, monkeypatch):
    monkeypatch.chdir(project)
    drawer = start(Path(job), PagePlan(False, (1,), False), print)
    assert isinstance(drawer, BackgroundReport)
    drawer.close()
    monkeypatch.setattr(report_module, "write_report", lambda *a, **k: [])
    assert start(Path(job), PagePlan(False, (1,), False), print) is None

"""The report drawn in a child process while the job computes its classes (issue 13).

Drawing ``logfile.pdf`` costs about 0.25 s of CPU per page and matplotlib takes about 0.7 s to
import: on a job's critical path that was up to 80 % of a small job.  :class:`BackgroundReport`
forks a child process before the first class is read.  The child imports the report's modules at
once, on the other core, and draws each class page as soon as the class is finished (the job sends
the :class:`~occupy_relion.result.ClassResult`); the pages that need every class (the regions, the
run page, the joint page) are drawn as soon as the job sends the regions (:meth:`BackgroundReport.rest`,
while it writes the region masks and occupancy.star), or else when it asks for the report.  PDF pages may be written in
any order and listed in another: the child lists them in the report's order, so the file shows the
same pages in the same order as one drawn page by page (its objects are stored in another order).
Each page drawn is reported back (the job logs it), and the job checks for RELION's abort request
while it waits.  The job may fork the child even earlier (:func:`prestart`, from the command line,
before the job's own imports), so matplotlib is imported while the job imports numpy and scipy.

The page numbers printed on the class pages depend on whether the region pages come first and how
many classes there are; the job says what it expects when it starts the child.  When the run turns
out otherwise (a class was empty, no region could be analysed) the pages drawn early are thrown away
and the whole report is drawn again, in order, exactly as before.

Forked, not spawned: the child is a copy of the job as it is when the classes start (no new
interpreter, no second import of numpy), and it calls :func:`occupy_relion.report.write_report`
itself, so the report is written by the same function as without a child.  The child writes only
into files named by the job (the staging area and one hidden temporary file in the job directory,
which holds the early pages, a few hundred KB); it never touches the job's lock, logs or markers,
ignores Ctrl-C (the job ends it) and dies on SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import tempfile
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomic import TEMP_PREFIX

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from ..result import ClassResult, RegionsResult, RunDescription

#: how often (s) the job checks for an abort while it waits for the report
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class PagePlan:
    """What the job expects its report to hold: decides the class pages' numbers before the end."""

    regions: bool  # whether the two region pages come first
    classes: tuple[int, ...]  # the class numbers, in order
    joint: bool  # whether a joint page comes last

    @property
    def pages(self) -> int:
        """The page count of a report of this plan (``pdf.render_pdf``'s layout)."""
        return (2 if self.regions else 0) + 1 + len(self.classes) + (1 if self.joint else 0)

    def class_page(self, number: int) -> int:
        """The page number of class ``number``'s page."""
        return (3 if self.regions else 1) + 1 + self.classes.index(number)

    def matches(self, run: RunDescription, classes: Sequence[ClassResult], regions: RegionsResult | None) -> bool:
        """Whether the report as it turned out has this plan's pages."""
        drawn = regions is not None and regions.view is not None
        return (drawn == self.regions and bool(run.joint) == self.joint
                and tuple(sorted(c.number for c in classes)) == self.classes)


@dataclass(frozen=True)
class ReportFailed:
    """The child's exception when the report could not be written (``error`` re-raised by the job)."""

    error: BaseException
    text: str  # the child's traceback (for a bug report)


class BackgroundReport:
    """A child process drawing ``logfile.pdf`` (and writing ``occupy.cxc``) while the classes run."""

    def __init__(self, job_dir: Path, plan: PagePlan, child: tuple[BaseProcess, Connection] | None = None):
        """Fork the child now, or give ``child`` (forked earlier by :func:`prestart`) the plan."""
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX + "report-", suffix=".pdf", dir=job_dir)
        os.close(fd)
        self._early_path = Path(name)  # the early pages (removed by close() if the child left it)
        # messages go through a thread: a class result is larger than the pipe's buffer, and the job
        # must not wait while the child is busy drawing
        self._outbox: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        if child is None:
            self._process, self._connection = _fork(Path(job_dir), plan, self._early_path)
        else:
            self._process, self._connection = child
            self._outbox.put(("plan", Path(job_dir), plan, self._early_path))
        self.drawn: list[str] = []  # the pages the child has drawn so far (what each page shows)
        self._sender = threading.Thread(target=self._send_all, name="occupy_relion report sender", daemon=True)
        self._sender.start()

    @staticmethod
    def available() -> bool:
        """Whether this system can fork a child for the report (not on Windows or macOS spawn-only)."""
        return "fork" in multiprocessing.get_all_start_methods()

    def add(self, result: ClassResult) -> None:
        """A finished class: its page can be drawn now."""
        self._send(("class", result))

    def rest(self, run: RunDescription, classes: Sequence[ClassResult], regions: RegionsResult | None) -> None:
        """Every class is finished and the regions are known: the remaining pages (regions, the run,
        the joint page) can be drawn now, while the job writes its last files.  ``finish`` must then be
        given the same run, classes and regions (the pages are drawn from these)."""
        self._send(("rest", run, list(classes), regions))

    def _send(self, message: tuple) -> None:
        self._outbox.put(message)

    def _send_all(self) -> None:
        """The sender thread: every message in order, until close() (the child gone: finish() says why)."""
        while True:
            message = self._outbox.get()
            if message is None:
                return
            try:
                self._connection.send(message)
            except (OSError, EOFError, ValueError):
                return

    def pages_drawn(self) -> list[str]:
        """The pages drawn since the last call (without waiting)."""
        new: list[str] = []
        while self._poll(0):
            message = self._receive()
            if message is None:
                break
            if message[0] == "page":
                new.append(message[1])
                self.drawn.append(message[1])
            else:
                self._early = message  # the child stopped before it was asked to finish (it failed)
                break
        return new

    _early: tuple | None = None

    def _poll(self, seconds: float) -> bool:
        try:
            return self._connection.poll(seconds)
        except (OSError, EOFError):
            return True

    def _receive(self) -> tuple | None:
        try:
            return self._connection.recv()
        except (OSError, EOFError):
            return None

    def finish(self, run: RunDescription, classes: Sequence[ClassResult], regions: RegionsResult | None,
               into: Path, progress: Callable[[str], None], check: Callable[[], None]) -> list[Path]:
        """Ask for the report and wait for it; return the paths written (in ``into``).

        ``progress`` gets one line per page drawn while waiting; ``check`` is called every
        :data:`POLL_SECONDS` (it raises JobAborted to stop: the child is then ended).  The child's
        exception, if it failed, is raised here (the job turns it into a warning).
        """
        for page in self.pages_drawn():
            progress(page)
        if self._early is None:
            self._send(("finish", run, list(classes), regions, Path(into)))
        while True:
            message = self._early
            self._early = None
            if message is None:
                check()
                if not self._poll(POLL_SECONDS):
                    if not self._process.is_alive() and not self._poll(0):
                        raise RuntimeError(f"the report process ended unexpectedly (exit {self._process.exitcode})")
                    continue
                message = self._receive()
                if message is None:
                    raise RuntimeError(f"the report process ended unexpectedly (exit {self._process.exitcode})")
            kind = message[0]
            if kind == "page":
                self.drawn.append(message[1])
                progress(message[1])
            elif kind == "done":
                self.close()
                return [Path(p) for p in message[1]]
            elif kind == "failed":
                self.close()
                failure: ReportFailed = message[1]
                raise failure.error

    def close(self) -> None:
        """End the child (if it still runs) and wait for it: call whatever happened to the job."""
        self._send(("stop",))
        self._outbox.put(None)
        self._sender.join(timeout=0.2)
        self._process.join(timeout=0.2)
        if self._process.is_alive():  # still drawing (the job stops): end it now
            self._process.terminate()
            self._process.join(timeout=2.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._sender.join()  # the child is gone, so a send it blocked in has failed
        try:
            self._connection.close()
        except OSError:
            pass
        self._early_path.unlink(missing_ok=True)


# -- the child -------------------------------------------------------------------------------------


def _fork(job_dir: Path | None, plan: PagePlan | None, early_path: Path | None) -> tuple[BaseProcess, Connection]:
    """Start the child (without a plan: it imports, then waits for one); the job's end of its pipe."""
    context = multiprocessing.get_context("fork")
    connection, child = context.Pipe()
    process = context.Process(target=_child, args=(child, job_dir, plan, early_path), daemon=True,
                              name="occupy_relion report")
    with warnings.catch_warnings():  # Python 3.12+ warns about fork when threads exist; ours start after it
        warnings.simplefilter("ignore", DeprecationWarning)
        process.start()
    child.close()
    return process, connection


class _EarlyPages:
    """The class pages drawn before the end, into a hidden PDF in the job directory."""

    def __init__(self, path: Path, plan: PagePlan, say: Callable[[str], None]):
        import matplotlib
        from matplotlib.backends.backend_pdf import PdfPages

        from .layout import STYLE

        self.plan = plan
        self.say = say
        self.path = path
        self._handle = open(path, "wb")  # noqa: SIM115 (closed by close())
        self._style = matplotlib.rc_context(STYLE)
        self._style.__enter__()
        self._pdf = PdfPages(self._handle, metadata=_metadata_placeholder())
        self.order: list[tuple[str, int]] = []  # (what, page number) of each page in the order drawn
        self.classes: dict[int, ClassResult] = {}

    def add(self, result: ClassResult) -> None:
        from .pages import class_page

        page = self.plan.class_page(result.number)
        self._pdf.savefig(class_page(result, page, self.plan.pages))
        self.order.append((f"class {result.number}", page))
        self.classes[result.number] = result
        self.say(f"page {page} of {self.plan.pages} (class {result.number:03d})")

    def complete(self, path: str | os.PathLike, run: RunDescription, classes: Sequence[ClassResult],
                 regions: RegionsResult | None) -> None:
        """The remaining pages (unless :meth:`draw_rest` drew them), the pages listed in the report's
        order, the file moved to ``path``."""
        if self.rest_of is None:
            self.draw_rest(run, classes, regions)
        self.pdf_done(path, run)

    #: what :meth:`draw_rest` drew the remaining pages for: (run, class numbers, region masks), or None
    rest_of: tuple | None = None

    def draws_for(self, run: RunDescription, classes: Sequence[ClassResult], regions: RegionsResult | None) -> tuple:
        """What identifies the pages of a run: its description, its classes, its regions' masks."""
        return (run, tuple(c.number for c in classes), None if regions is None else regions.region_masks)

    def draw_rest(self, run: RunDescription, classes: Sequence[ClassResult], regions: RegionsResult | None) -> None:
        """Every page not drawn yet: the classes not sent before, the regions, the run, the joint page.

        Exactly ``pdf.render_pdf``'s pages: the same functions with the same arguments.
        """
        from .pages import class_page, joint_page, summary_page
        from .region_pages import answer_page, comparison_page

        self.rest_of = self.draws_for(run, classes, regions)
        plan, pdf = self.plan, self._pdf
        pages = plan.pages
        ordered = sorted(classes, key=lambda c: c.number)
        for c in ordered:  # classes not sent before (a result is final once sent)
            if c.number not in self.classes:
                page = plan.class_page(c.number)
                pdf.savefig(class_page(c, page, pages))
                self.order.append((f"class {c.number}", page))
                self.say(f"page {page} of {pages} (class {c.number:03d})")
        first = 1
        if plan.regions:
            assert regions is not None
            pdf.savefig(answer_page(run, ordered, regions, 1, pages))
            self.order.append(("regions", 1))
            self.say(f"page 1 of {pages} (regions)")
            pdf.savefig(comparison_page(ordered, regions, 2, pages))
            self.order.append(("comparison", 2))
            self.say(f"page 2 of {pages} (classes side by side)")
            first = 3
        pdf.savefig(summary_page(run, ordered, pages, regions, first))
        self.order.append(("run", first))
        self.say(f"page {first} of {pages} (the run)")
        if run.joint:
            pdf.savefig(joint_page(run, ordered, pages, pages))
            self.order.append(("joint", pages))
            self.say(f"page {pages} of {pages} (joint)")

    def pdf_done(self, path: str | os.PathLike, run: RunDescription) -> None:
        """Every page drawn: the metadata, the pages listed in order, the file moved to ``path``."""
        pdf = self._pdf
        pdf.infodict().update(_metadata(run))
        _list_in_order(pdf, self.order)
        self.close()
        os.replace(self.path, path)

    def close(self) -> None:
        try:
            self._pdf.close()
        finally:
            self._handle.close()
            self._style.__exit__(None, None, None)

    def discard(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 (thrown away anyway)
            pass
        self.path.unlink(missing_ok=True)


def _metadata_placeholder() -> dict[str, str]:
    return {"Creator": "occupy_relion"}


def _metadata(run: RunDescription) -> dict[str, str]:
    """The PDF's metadata (as ``pdf.render_pdf`` sets them)."""
    return {"Title": f"occupy_relion report: {run.job_dir}", "Creator": "occupy_relion",
            "Subject": "occupancy of the regions of RELION classes, local scale"}


def _list_in_order(pdf: Any, order: list[tuple[str, int]]) -> None:
    """List the PDF's pages by page number (the file's page tree, written when it is closed)."""
    pages = pdf._ensure_file().pageList  # noqa: SLF001 (matplotlib's page tree, in drawing order)
    if len(pages) != len(order):
        raise RuntimeError("the report's pages could not be put in order")
    pages[:] = [page for _, page in sorted(zip(order, pages), key=lambda pair: pair[0][1])]


def _child(connection: Any, job_dir: Path | None, plan: PagePlan | None, early_path: Path | None) -> None:
    """The child's life: warm up, (get the plan), draw class pages as they come, write the report when asked."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the job ends us; its own handler raises in the job only
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the job, which ends us
    early: _EarlyPages | None = None

    def say(text: str) -> None:
        connection.send(("page", text))

    try:
        from .. import report
        from . import chimerax, pdf  # noqa: F401 (imported now, while the job computes its classes)

        if plan is None:  # forked by prestart(): the job sends the plan once it knows it
            message = connection.recv()
            if message[0] != "plan":
                return
            _, job_dir, plan, early_path = message
        assert job_dir is not None and plan is not None and early_path is not None

        early = _EarlyPages(early_path, plan, say) if _can_list_pages() else None
        while True:
            message = connection.recv()
            if message[0] == "class":
                if early is not None:
                    early.add(message[1])
            elif message[0] == "rest":
                _, run, classes, regions = message
                if early is not None and early.plan.matches(run, classes, regions):
                    early.draw_rest(run, classes, regions)
            elif message[0] == "finish":
                _, run, classes, regions, into = message
                paths = _write(report, pdf, early, job_dir, run, classes, regions, into, say)
                early = None
                connection.send(("done", [str(p) for p in paths]))
                return
            else:
                return
    except (EOFError, OSError, KeyboardInterrupt):
        return
    except BaseException as error:  # noqa: BLE001 (sent to the job, which warns)
        try:
            connection.send(("failed", ReportFailed(_picklable(error), traceback.format_exc())))
        except Exception:  # noqa: BLE001
            pass
    finally:
        if early is not None:
            early.discard()
        connection.close()


def _write(report: Any, pdf: Any, early: _EarlyPages | None, job_dir: Path, run: RunDescription,
           classes: Sequence[ClassResult], regions: RegionsResult | None, into: Path,
           say: Callable[[str], None]) -> list[Path]:
    """``report.write_report`` with its PDF completed from the early pages when they fit the run."""
    original = pdf.render_pdf

    def render(path, run_, ordered, regions_=None):
        # the early pages fit when the run is as planned and, if the rest was drawn, drawn for this run
        fits = early is not None and early.plan.matches(run_, ordered, regions_) and (
            early.rest_of is None or early.rest_of == early.draws_for(run_, ordered, regions_))
        if early is not None and fits:
            early.complete(path, run_, ordered, regions_)
        else:
            if early is not None:
                early.discard()
            original(path, run_, ordered, regions_)
            say("every page drawn")

    pdf.render_pdf = render  # in this child only: the job's own module is untouched
    try:
        return list(report.write_report(job_dir, run, classes, regions=regions, into=into))
    finally:
        pdf.render_pdf = original


def _can_list_pages() -> bool:
    """Whether this matplotlib keeps its page tree where :func:`_list_in_order` finds it."""
    from matplotlib.backends.backend_pdf import PdfFile, PdfPages

    return hasattr(PdfPages, "_ensure_file") and "pageList" in PdfFile.__init__.__code__.co_names


def _picklable(error: BaseException) -> BaseException:
    """The exception itself when it can be sent to the job, else a RuntimeError with its text."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(f"{type(error).__name__}: {error}")


def _own_writer() -> bool:
    """Whether ``occupy_relion.report.write_report`` is the package's own (not imported yet: it is).

    A program that embeds the job with a report of its own, or a test's stand-in, replaces it: the
    job then calls the replacement itself, in its own process, and no child is started.
    """
    module = sys.modules.get("occupy_relion.report")
    if module is None:
        return True
    writer = getattr(module, "write_report", None)
    return getattr(writer, "__module__", None) == "occupy_relion.report" and \
        getattr(writer, "__qualname__", None) == "write_report"


#: the child forked by prestart(), until start() takes it (or end_prestarted() ends it)
_waiting: tuple[BaseProcess, Connection] | None = None


def prestart() -> None:
    """Fork the report's child now, before the job imports its libraries: it imports matplotlib and
    the report (about 1 s) on the other core while the job imports numpy, scipy and pandas, and waits
    for :func:`start`.  Call :func:`end_prestarted` when the job ends, whatever happened."""
    global _waiting
    if _waiting is None and BackgroundReport.available() and _own_writer():
        try:
            _waiting = _fork(None, None, None)
        except OSError:
            _waiting = None


def end_prestarted() -> None:
    """End the child of :func:`prestart` if no job took it (a bad command line, a locked directory)."""
    global _waiting
    waiting, _waiting = _waiting, None
    if waiting is not None:
        _end(*waiting)


def _end(process: BaseProcess, connection: Connection) -> None:
    """Ask a child that has no plan yet to stop; end it if it does not."""
    try:
        connection.send(("stop",))
        connection.close()
    except OSError:
        pass
    process.join(timeout=0.5)
    if process.is_alive():
        process.terminate()
        process.join()


def start(job_dir: Path, plan: PagePlan, warn: Callable[[str], None]) -> BackgroundReport | None:
    """A child drawing the report (the one :func:`prestart` forked, else a new one), or None: the
    report is then drawn in the job, at the end, as before (see :func:`_own_writer`)."""
    global _waiting
    if not BackgroundReport.available() or not _own_writer():
        end_prestarted()
        return None
    waiting, _waiting = _waiting, None
    try:
        return BackgroundReport(job_dir, plan, waiting)
    except OSError as error:
        if waiting is not None:
            _end(*waiting)
        warn(f"report drawn at the end (no child process: {error.strerror or error})")
        return None


__all__ = ["BackgroundReport", "PagePlan", "ReportFailed", "end_prestarted", "prestart", "start"]

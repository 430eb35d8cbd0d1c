"""What a run shows a person: the PDF logfile and the ChimeraX script.

The job hands over one :class:`~occupy_relion.result.ClassResult` per class; its ``view`` holds
every number and small array the report shows, computed by the summary step (``summary.py``) right
after the class was processed, so the report costs no memory and only draws.  :func:`write_report`
writes ``logfile.pdf`` (``pdf.py``: pages in ``pages.py``, drawn with ``layout.py``) and
``occupy.cxc`` (``chimerax.py``) into the job directory, both atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_path

if TYPE_CHECKING:  # importing the package stays light (report.background forks before numpy is loaded)
    from ..result import ClassResult, RegionsResult, RunDescription

__all__ = ["LOGFILE_NAME", "SCRIPT_NAME", "write_report"]

LOGFILE_NAME = "logfile.pdf"
SCRIPT_NAME = "occupy.cxc"


def write_report(job_dir: str | os.PathLike, run: RunDescription, classes: Sequence[ClassResult], *,
                 project_dir: str | os.PathLike | None = None, regions: RegionsResult | None = None,
                 into: str | os.PathLike | None = None) -> list[Path]:
    """Write ``logfile.pdf`` and ``occupy.cxc`` into ``job_dir``; return the paths written.

    ``project_dir``: what the results' paths are relative to (default: the current directory, which
    is the project directory when RELION runs the job).  ``regions``: the cross-class analysis and
    its files (None: no region analysis was made).  Both files are written to hidden temporary
    files first and moved into place only when both are complete: an exception leaves no partial
    file (and any earlier report untouched).  ``into``: the directory the files are written to
    (default ``job_dir``; the job passes its staging area, the script still names ``job_dir``'s maps).
    """
    from . import chimerax, pdf  # matplotlib is imported only when a report is written

    job_dir = Path(job_dir)
    project = Path.cwd() if project_dir is None else Path(project_dir)
    ordered = sorted(classes, key=lambda c: c.number)
    directory = job_dir if into is None else Path(into)
    directory.mkdir(parents=True, exist_ok=True)
    targets = [directory / LOGFILE_NAME, directory / SCRIPT_NAME]
    with atomic_path(targets[0]) as pdf_path, atomic_path(targets[1]) as script_path:
        pdf.render_pdf(pdf_path, run, ordered, regions)
        script = chimerax.chimerax_script(ordered, job_dir=job_dir, project_dir=project, regions=regions)
        script_path.write_text(script, encoding="utf-8")
    return targets

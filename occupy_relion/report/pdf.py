"""``logfile.pdf``: with a region analysis first the answer (regions × classes) and the classes side by
side; then the run summary page, one page per class and, with ``--joint``, the joint histogram page.

Headless by construction: pages are plain :class:`matplotlib.figure.Figure` objects (``pages.py``)
written by the PDF backend's :class:`~matplotlib.backends.backend_pdf.PdfPages`, so no GUI backend
is touched and the global backend (``matplotlib.use``) and rcParams of the calling program are left
as they were (the report's style is applied in an ``rc_context``).

For speed (the report's cost is fixed, about 0.25 s of CPU per class page, so it only matters next to
small boxes): the nine slices of a class share one axes (laid out in Å) that also holds the colour
bar, images carry no ticks (a scale bar in Å instead) and are embedded at their own resolution
(``interpolation="none"``), histograms are single polygons or collections, log axes are labelled
without mathtext, titles sit at a fixed height and nothing asks for an automatic layout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib
from matplotlib.backends.backend_pdf import PdfPages

from ..result import ClassResult, RegionsResult, RunDescription
from .layout import STYLE
from .pages import class_page, joint_page, summary_page
from .region_pages import answer_page, comparison_page


def render_pdf(path: str | os.PathLike, run: RunDescription, classes: Sequence[ClassResult],
               regions: RegionsResult | None = None) -> None:
    """Write the whole PDF logfile to ``path``.

    With a region analysis (and its view): the answer page (regions × classes), the classes side by
    side, the run page, one page per class (+ the joint page with joint).  Without one: the run page
    (saying why there are no regions), one page per class (+ the joint page).
    """
    drawn = regions is not None and regions.view is not None
    pages = (2 if drawn else 0) + 1 + len(classes) + (1 if run.joint else 0)
    metadata = {"Title": f"occupy_relion report: {run.job_dir}", "Creator": "occupy_relion",
                "Subject": "occupancy of the regions of RELION classes, local scale"}
    # the file is opened (and closed, whatever happens) here: PdfPages left to itself keeps it open when
    # its last write fails (a full disk), so the space of the deleted temporary file would stay in use
    with open(path, "wb") as handle, matplotlib.rc_context(STYLE), PdfPages(handle, metadata=metadata) as pdf:
        page = 1
        if drawn:
            assert regions is not None
            pdf.savefig(answer_page(run, classes, regions, 1, pages))
            pdf.savefig(comparison_page(classes, regions, 2, pages))
            page = 3
        pdf.savefig(summary_page(run, classes, pages, regions, page))
        for index, c in enumerate(classes):
            pdf.savefig(class_page(c, page + 1 + index, pages))
        if run.joint:
            pdf.savefig(joint_page(run, classes, pages, pages))

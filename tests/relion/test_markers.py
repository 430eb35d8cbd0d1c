"""Marker files: stale exit markers removed at start, abort requests kept, honoured and then deleted."""

from __future__ import annotations

import pytest

from occupy_relion.errors import JobAborted
from occupy_relion.relion import markers


def test_clear_stale_removes_exit_markers_and_old_nodes_but_keeps_an_abort_request(tmp_path):
    """The pipeliner deletes ABORT_NOW before the launch: one found at start is a request to honour."""
    for name in (*markers.EXIT_MARKERS, markers.ABORT_NOW, markers.OUTPUT_NODES, ".occupy-tmp-abc.mrc"):
        (tmp_path / name).write_text("")
    (tmp_path / "class001_scale.mrc").write_text("keep")
    removed = markers.clear_stale(tmp_path)
    assert set(removed) == {*markers.EXIT_MARKERS, markers.OUTPUT_NODES}
    assert sorted(p.name for p in tmp_path.iterdir()) == [markers.ABORT_NOW, "class001_scale.mrc"]
    with pytest.raises(JobAborted):
        markers.check_abort(tmp_path)


def test_abort_check(tmp_path):
    markers.check_abort(tmp_path)  # nothing asked: no exception
    (tmp_path / markers.ABORT_NOW).write_text("")
    assert markers.abort_requested(tmp_path)
    with pytest.raises(JobAborted):
        markers.check_abort(tmp_path)
    markers.mark_aborted(tmp_path)
    assert not (tmp_path / markers.ABORT_NOW).exists()
    assert (tmp_path / markers.ABORTED).exists()


def test_failure_removes_the_node_list(tmp_path):
    (tmp_path / markers.OUTPUT_NODES).write_text("old")
    assert markers.mark_failure(tmp_path)
    assert (tmp_path / markers.FAILURE).exists() and not (tmp_path / markers.OUTPUT_NODES).exists()
    assert not markers.mark_failure(tmp_path / "does" / "not" / "exist")

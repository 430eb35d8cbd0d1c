"""Atomic writing: the finished file or nothing, never half a file."""

from __future__ import annotations

import os
import stat

import pytest

from occupy_relion.atomic import TEMP_PREFIX, atomic_path, write_text


def test_write_text_publishes_a_whole_file_with_umask_permissions(tmp_path):
    path = write_text(tmp_path / "a.star", "hello\n")
    assert path.read_text() == "hello\n" and [p.name for p in tmp_path.iterdir()] == ["a.star"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_an_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "map.mrc"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            assert temporary.name.startswith(TEMP_PREFIX) and temporary.suffix == ".mrc"
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["map.mrc"]


def test_nested_blocks_publish_both_files_or_neither(tmp_path):
    first, second = tmp_path / "logfile.pdf", tmp_path / "occupy.cxc"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(first) as a, atomic_path(second) as b:
            a.write_text("pdf")
            b.write_text("half a script")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    with atomic_path(first) as a, atomic_path(second) as b:
        a.write_text("pdf")
        b.write_text("script")
    assert first.read_text() == "pdf" and second.read_text() == "script"

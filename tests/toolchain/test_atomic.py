"""Atomic writes leave either the old file or the new one, never a half-written file or a temp file."""
from __future__ import annotations

import pytest

from toolchain import atomic


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    atomic.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_failure_inside_the_writer_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_nan_is_refused_and_nothing_is_written(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(ValueError):
        atomic.write_json(target, {"x": float("nan")})
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_suffix_is_kept_for_writers_that_look_at_it(tmp_path):
    with atomic.atomic_path(tmp_path / "plot.png", suffix=".png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"png")
    assert (tmp_path / "plot.png").read_bytes() == b"png"


def test_new_files_get_ordinary_permissions_and_existing_ones_keep_theirs(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        fresh = atomic.write_text(tmp_path / "new.txt", "x")
        assert fresh.stat().st_mode & 0o777 == 0o644
        kept = tmp_path / "kept.txt"
        kept.write_text("old")
        kept.chmod(0o600)
        atomic.write_text(kept, "new")
        assert kept.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(umask)


def test_the_target_is_replaced_by_a_rename_never_written_in_place(tmp_path):
    """While the writer writes, the target still holds the old file whole (a reader never sees half of
    one), and the new file arrives by rename: a hard link to the old file keeps the old content."""
    import os

    target = tmp_path / "out.json"
    target.write_text("old")
    os.link(target, tmp_path / "snapshot")
    with atomic.atomic_path(target) as tmp:
        assert tmp != target and tmp.parent == target.parent
        tmp.write_text("new content")
        assert target.read_text() == "old"
    assert target.read_text() == "new content"
    assert (tmp_path / "snapshot").read_text() == "old"  # an in-place write would have changed the linked file

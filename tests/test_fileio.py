"""edgesep.fileio: atomic writes, --force, and the permissions of what they write."""

from __future__ import annotations

import os
import stat

import pytest

from edgesep.errors import OutputExistsError
from edgesep.fileio import atomic_path, remove_stale_temps, write_bytes


def test_atomic_write_gets_umask_permissions_not_mkstemps_0600(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_bytes(tmp_path / "model.tflite", b"abc")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.read_bytes() == b"abc"


def test_failed_write_leaves_neither_target_nor_temp(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(tmp_path):
    write_bytes(tmp_path / "a.bin", b"1")
    with pytest.raises(OutputExistsError):
        write_bytes(tmp_path / "a.bin", b"2")
    assert write_bytes(tmp_path / "a.bin", b"2", force=True).read_bytes() == b"2"


def test_stale_temps_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    """A SIGKILLed writer leaves `.<name>.<pid>.<random>.tmp`; the next run removes it, not a live writer's."""
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    (tmp_path / "validate").mkdir()
    stale = [tmp_path / f".model.tflite.{dead_pid}.ab_cd123.tmp", tmp_path / "validate" / f".rows.json.{dead_pid}.x1y2z3w4.tmp"]
    live = tmp_path / f".state.json.{os.getpid()}.abcdefgh.tmp"
    other = [tmp_path / ".hidden.tmp", tmp_path / f"model.{dead_pid}.abcdefgh.tmp", tmp_path / "notes.txt"]
    for path in [*stale, live, *other]:
        path.write_bytes(b"x")
    with atomic_path(tmp_path / "fresh.bin") as tmp:  # a write in progress in this process: its temp is kept
        tmp.write_bytes(b"new")
        assert sorted(remove_stale_temps(tmp_path)) == sorted(stale)
        assert tmp.is_file()
    assert not any(p.exists() for p in stale) and live.is_file() and all(p.is_file() for p in other)
    assert (tmp_path / "fresh.bin").read_bytes() == b"new"

"""edgesep.fileio: atomic writes, --force, and the permissions of what they write."""

from __future__ import annotations

import os
import stat

import pytest

from edgesep.errors import OutputExistsError
from edgesep.fileio import atomic_path, write_bytes


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

"""The ``sync:`` service (AOSP ``file_sync_protocol.h`` / ``SYNC.TXT``), version 1 requests.

Requests are ``id`` (4 ASCII bytes) + little-endian u32 length + path.  STAT -> ``STAT`` mode, size,
mtime (all zero when missing); LIST -> ``DENT`` mode, size, mtime, namelen, name ... then a
20-byte ``DONE``; SEND ``path,mode`` then ``DATA`` chunks and ``DONE`` mtime -> ``OKAY`` or ``FAIL``
msg; RECV -> ``DATA`` chunks (64 KiB at most) then ``DONE``, or ``FAIL`` msg; QUIT ends the service.
Every path is mapped into the phone folder (:meth:`PhoneLayout.host_path`).
"""

from __future__ import annotations

import os
import stat
import struct
import tempfile
from pathlib import Path

from edgesep.devices.phone_emulator.layout import PhoneLayout
from edgesep.devices.phone_emulator.streams import Stream, StreamClosed

SYNC_DATA_MAX = 64 * 1024
MAX_PATH = 1024
_REQUEST = struct.Struct("<4sI")
_STAT = struct.Struct("<4sIII")
_DENT = struct.Struct("<4sIIII")


def run_sync(stream: Stream, layout: PhoneLayout) -> None:
    try:
        while True:
            ident, length = _REQUEST.unpack(stream.read_exactly(_REQUEST.size))
            if ident == b"QUIT":
                break
            if length > MAX_PATH:
                _fail(stream, f"path too long: {length}")
                break
            path = stream.read_exactly(length).decode("utf-8", errors="surrogateescape")
            if ident == b"STAT":
                _stat(stream, layout.host_path(path))
            elif ident == b"LIST":
                _list(stream, layout.host_path(path))
            elif ident == b"SEND":
                _receive_file(stream, layout, path)
            elif ident == b"RECV":
                _send_file(stream, layout.host_path(path))
            else:
                _fail(stream, f"unknown sync request {ident!r}")
                break
    except StreamClosed:
        return
    stream.close()


def _fail(stream: Stream, message: str) -> None:
    data = message.encode()
    stream.write(_REQUEST.pack(b"FAIL", len(data)) + data)


def _stat(stream: Stream, path: Path) -> None:
    try:
        info = os.lstat(path)
        stream.write(_STAT.pack(b"STAT", info.st_mode, info.st_size & 0xFFFFFFFF, int(info.st_mtime)))
    except OSError:
        stream.write(_STAT.pack(b"STAT", 0, 0, 0))


def _list(stream: Stream, folder: Path) -> None:
    try:
        names = [".", "..", *sorted(os.listdir(folder))]
    except OSError:
        names = []
    for name in names:
        try:
            info = os.lstat(folder / name)
        except OSError:
            continue
        encoded = name.encode("utf-8", errors="surrogateescape")
        stream.write(_DENT.pack(b"DENT", info.st_mode, info.st_size & 0xFFFFFFFF, int(info.st_mtime), len(encoded)) + encoded)
    stream.write(_DENT.pack(b"DONE", 0, 0, 0, 0))


def _receive_file(stream: Stream, layout: PhoneLayout, spec: str) -> None:
    """SEND: read DATA chunks until DONE into a temp file, then rename it onto the target (like adbd)."""
    device_path, _, mode_text = spec.rpartition(",")
    if not device_path:
        device_path, mode_text = spec, "33188"
    mode = int(mode_text) if mode_text.isdigit() else 0o100644
    target = layout.host_path(device_path)
    handle = None
    error = ""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir() or device_path.endswith("/"):
            raise IsADirectoryError("couldn't create file: Is a directory")
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        handle = os.fdopen(fd, "wb")
    except OSError as problem:
        error = problem.strerror or str(problem)
        error = f"couldn't create file: {error}" if not str(problem).startswith("couldn't") else str(problem)
    mtime = 0
    while True:
        ident, size = _REQUEST.unpack(stream.read_exactly(_REQUEST.size))
        if ident == b"DATA":
            data = stream.read_exactly(size)
            if handle is not None and not error:
                try:
                    handle.write(data)
                except OSError as problem:
                    error = f"write failed: {problem.strerror}"
        elif ident == b"DONE":
            mtime = size
            break
        else:
            error = error or f"invalid data message {ident!r}"
            break
    if handle is not None:
        try:
            handle.close()
        except OSError as problem:
            error = error or f"write failed: {problem.strerror}"
        if error:
            os.unlink(temporary)
        else:
            os.chmod(temporary, stat.S_IMODE(mode) or 0o644)
            os.utime(temporary, (mtime, mtime))
            os.replace(temporary, target)
    if error:
        _fail(stream, error)
    else:
        stream.write(_REQUEST.pack(b"OKAY", 0))


def _send_file(stream: Stream, path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(SYNC_DATA_MAX):
                stream.write(_REQUEST.pack(b"DATA", len(chunk)) + chunk)
    except OSError as problem:
        _fail(stream, f"open failed: {problem.strerror}")  # adbd checks before the first DATA, so do we
        return
    stream.write(_REQUEST.pack(b"DONE", 0))

"""The ``shell:`` / ``shell,v2,...:`` / ``exec:`` services: a host ``/bin/sh`` in the phone folder.

Raw shell (no ``v2``) and ``exec:`` send the command's bytes as they come (stderr merged into
stdout for ``shell:``) and carry no exit code — as on a phone.  Shell protocol v2 (AOSP
``shell_protocol.h``) frames everything: 1 byte id + 4-byte little-endian length + data;
ids 0 stdin, 1 stdout, 2 stderr, 3 exit (one byte), 4 close stdin, 5 window size.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import threading
from collections.abc import Callable

from edgesep.devices.phone_emulator.layout import PhoneLayout
from edgesep.devices.phone_emulator.streams import Stream, StreamClosed

ID_STDIN, ID_STDOUT, ID_STDERR, ID_EXIT, ID_CLOSE_STDIN, ID_WINDOW_SIZE = 0, 1, 2, 3, 4, 5
_FRAME = struct.Struct("<BI")


def parse_service(service: str) -> tuple[str, list[str], str]:
    """``shell,v2,raw:ls -l`` -> ("shell", ["v2", "raw"], "ls -l")."""
    head, _, command = service.partition(":")
    name, *args = head.split(",")
    return name, args, command


def run_shell(
    stream: Stream,
    layout: PhoneLayout,
    *,
    command: str,
    v2: bool,
    merge_stderr: bool,
    register: Callable[[subprocess.Popen], None],
) -> None:
    """Run ``command`` (an interactive sh when empty) and stream its output; v2 frames it and ends with the exit code."""
    argv = ["/bin/sh", "-c", layout.to_host(command)] if command.strip() else ["/bin/sh", "-i"]
    process = subprocess.Popen(
        argv,
        cwd=layout.root,
        env=layout.shell_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        start_new_session=True,
    )
    register(process)
    lock = threading.Lock()

    def send(kind: int, data: bytes) -> None:
        text = layout.to_device(data.decode("utf-8", errors="surrogateescape")).encode("utf-8", errors="surrogateescape")
        with lock:
            stream.write(_FRAME.pack(kind, len(text)) + text if v2 else text)

    pumps = [threading.Thread(target=_pump, args=(process.stdout, ID_STDOUT, send, process), daemon=True)]
    if process.stderr is not None:
        pumps.append(threading.Thread(target=_pump, args=(process.stderr, ID_STDERR, send, process), daemon=True))
    feeder = threading.Thread(target=_feed_stdin, args=(stream, process, v2), daemon=True)
    for thread in (*pumps, feeder):
        thread.start()
    code = process.wait()
    for pump in pumps:
        pump.join()
    try:
        if v2:
            with lock:
                stream.write(_FRAME.pack(ID_EXIT, 1) + bytes([code & 0xFF if code >= 0 else 128 - code]))
    except StreamClosed:
        pass
    stream.close()


def _pump(pipe, kind: int, send: Callable[[int, bytes], None], process: subprocess.Popen) -> None:
    try:
        while data := os.read(pipe.fileno(), 65536):
            send(kind, data)
    except StreamClosed:
        hang_up(process)  # the host went away: like adbd, hang up the shell (what it put in the background lives on)
        while os.read(pipe.fileno(), 65536):
            pass
    finally:
        pipe.close()


def _feed_stdin(stream: Stream, process: subprocess.Popen, v2: bool) -> None:
    stdin = process.stdin
    assert stdin is not None
    try:
        if not v2:
            while data := stream.read_some():
                stdin.write(data)
                stdin.flush()
            hang_up(process)  # the host closed the stream
            return
        while True:
            kind, length = _FRAME.unpack(stream.read_exactly(_FRAME.size))
            data = stream.read_exactly(length) if length else b""
            if kind == ID_STDIN:
                stdin.write(data)
                stdin.flush()
            elif kind == ID_CLOSE_STDIN:
                return
    except (StreamClosed, OSError):
        if stream.closed.is_set():
            hang_up(process)
    finally:
        try:
            stdin.close()
        except OSError:
            pass


def hang_up(process: subprocess.Popen) -> None:
    """SIGHUP the shell's process group (a background job that made its own group survives, as on a phone)."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGHUP)
        except ProcessLookupError:
            pass


def kill_session(session_id: int) -> None:
    """SIGKILL every process of a shell's session (each shell starts one): what a phone's power-off does."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id:  # after the command name: state, ppid, pgrp, session
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass

"""Keep TensorFlow's and TFLite's native info lines out of the CLI's stderr.

`TF_CPP_MIN_LOG_LEVEL` does not reach every native logger: TFLite's minimal logger prints
"INFO: Created TensorFlow Lite XNNPACK delegate for CPU." and the MLIR quantizer prints
"fully_quantize: 0, inference_type: 6, ..." straight to file descriptor 2, in the middle of progress bars.
No public API turns them off, so the console script puts a filter on descriptor 2: a pipe whose reader
thread forwards everything except those known lines, chunk by chunk (progress bars keep streaming).
Used only by the console script and only below `-vv`; `main()` called from Python is left alone.
"""

from __future__ import annotations

import os
import re
import select
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

NOISE = re.compile(
    rb"^(INFO: Created TensorFlow Lite XNNPACK delegate"
    rb"|INFO: Initialized TensorFlow Lite runtime"
    rb"|fully_quantize: \d+, inference_type: "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] )"
)
_SEGMENT_END = re.compile(rb"[\r\n]")
_replaced: list[int] = []  # while the filter runs: a copy of the descriptor 2 it stands in for


@contextmanager
def unfiltered_stderr() -> Iterator[TextIO]:
    """The user's own stderr, past the filter (a terminal stays a terminal): for a progress bar that must be drawn
    in order with what the command then prints, when nothing native writes meanwhile."""
    if not _replaced:
        yield sys.stderr
        return
    sys.stderr.flush()
    with os.fdopen(os.dup(_replaced[-1]), "w", encoding="utf-8", errors="replace") as stream:
        yield stream


def _forward(read_fd: int, write_fd: int) -> None:
    try:
        _pump(read_fd, write_fd)
    except OSError:  # the descriptors were closed under us at exit: nothing left to forward
        pass


def _pump(read_fd: int, write_fd: int) -> None:
    pending = b""
    while True:
        ready, _, _ = select.select([read_fd], [], [], 0.2)
        if not ready:  # quiet for a moment: a prompt or partial line goes out as it is
            if pending:
                os.write(write_fd, pending)
                pending = b""
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        pending += chunk
        out = bytearray()
        while (match := _SEGMENT_END.search(pending)) is not None:
            segment, pending = pending[: match.end()], pending[match.end() :]
            if not NOISE.match(segment.lstrip(b"\r")):
                out += segment
        if out:
            os.write(write_fd, bytes(out))
    if pending and not NOISE.match(pending):
        os.write(write_fd, pending)


@contextmanager
def filtered_native_stderr() -> Iterator[None]:
    """Route descriptor 2 through the noise filter for the duration of the block."""
    try:
        sys.stderr.flush()
        original = os.dup(2)
        read_fd, write_fd = os.pipe()
    except OSError:  # no descriptor 2 (a daemon) or no descriptors left: run unfiltered
        yield
        return
    _replaced.append(original)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    reader = threading.Thread(target=_forward, args=(read_fd, original), daemon=True, name="native-stderr")
    reader.start()
    try:
        yield
    finally:
        _replaced.pop()
        try:
            sys.stderr.flush()
        finally:
            os.dup2(original, 2)  # the pipe's last write end closes here: the reader drains and stops
            try:
                reader.join(timeout=5)
            finally:
                if not reader.is_alive():  # a child still holding the pipe keeps it open: leave it to exit
                    os.close(read_fd)
                    os.close(original)

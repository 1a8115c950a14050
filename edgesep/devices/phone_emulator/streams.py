"""One ADB stream (OPEN ... CLSE) seen from the device: a byte pipe in each direction.

Incoming WRTE payloads are queued for the service and acknowledged with OKAY at once;
outgoing data is cut to the negotiated payload size and each WRTE waits for the host's
OKAY before the next one (the protocol's flow control).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from edgesep.devices.phone_emulator.wire import A_CLSE, A_WRTE, Message


class StreamClosed(Exception):
    """The host closed the stream or the transport went away."""


class Stream:
    def __init__(self, local_id: int, remote_id: int, *, send: Callable[[Message], None], max_payload: int) -> None:
        self.local_id = local_id
        self.remote_id = remote_id
        self._send = send
        self._max_payload = max_payload
        self._ready = threading.Event()
        self._ready.set()  # the first WRTE after our OKAY needs no acknowledgement
        self._inbox: queue.Queue[bytes | None] = queue.Queue()
        self._buffer = b""
        self.closed = threading.Event()
        self._lock = threading.Lock()

    # -- called by the transport's reader thread
    def received(self, data: bytes) -> None:
        self._inbox.put(data)

    def acknowledged(self) -> None:
        self._ready.set()

    def remote_closed(self) -> None:
        self.closed.set()
        self._ready.set()
        self._inbox.put(None)

    # -- called by the service
    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            chunk, view = view[: self._max_payload], view[self._max_payload :]
            while not self._ready.wait(0.5):
                if self.closed.is_set():
                    break
            if self.closed.is_set():
                raise StreamClosed()
            self._ready.clear()
            self._send(Message(A_WRTE, self.local_id, self.remote_id, bytes(chunk)))

    def read_some(self) -> bytes:
        """The next bytes from the host; b"" once the host has closed the stream."""
        if self._buffer:
            buffered, self._buffer = self._buffer, b""
            return buffered
        data = self._inbox.get()
        if data is None:
            self._inbox.put(None)
            return b""
        return data

    def read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            data = self._inbox.get()
            if data is None:
                self._inbox.put(None)
                raise StreamClosed()
            self._buffer += data
        wanted, self._buffer = self._buffer[:size], self._buffer[size:]
        return wanted

    def close(self) -> None:
        """Our side is done: CLSE once (no-op if the host closed first)."""
        with self._lock:
            if self.closed.is_set():
                return
            self.closed.set()
        self._send(Message(A_CLSE, self.local_id, self.remote_id))

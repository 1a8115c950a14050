"""The device side of ADB over TCP: what ``adb connect 127.0.0.1:PORT`` talks to.

One thread per host connection reads messages: CNXN (answered with our banner, or first an
AUTH TOKEN challenge), AUTH, OPEN (a service thread per stream), OKAY, WRTE, CLSE.
:func:`start_emulated_phone` runs it in this process and returns a handle to stop it.
"""

from __future__ import annotations

import enum
import itertools
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgesep.devices.phone_emulator.auth import AdbPublicKey, parse_public_key
from edgesep.devices.phone_emulator.layout import PhoneLayout, make_phone
from edgesep.devices.phone_emulator.shell import kill_session, parse_service, run_shell
from edgesep.devices.phone_emulator.streams import Stream, StreamClosed
from edgesep.devices.phone_emulator.sync import run_sync
from edgesep.devices.phone_emulator.wire import (
    A_AUTH,
    A_CLSE,
    A_CNXN,
    A_OKAY,
    A_OPEN,
    A_VERSION,
    A_WRTE,
    AUTH_RSAPUBLICKEY,
    AUTH_SIGNATURE,
    AUTH_TOKEN,
    MAX_PAYLOAD,
    TOKEN_SIZE,
    Message,
    ProtocolError,
    read_message,
)

FEATURES = ("shell_v2", "cmd", "fixed_push_mkdir")
KEYS_FILE = "data/misc/adb/adb_keys"  # inside the phone folder, as on a phone


class AuthMode(enum.Enum):
    """How the phone answers a host: NONE skips AUTH (like ``ro.adb.secure=0``); ACCEPT trusts a new key
    (the user taps "Allow"); REJECT never does (the host shows ``unauthorized``); SILENT never answers
    the host's CNXN at all (the host shows ``offline``)."""

    NONE = "none"
    ACCEPT = "accept"
    REJECT = "reject"
    SILENT = "silent"


@dataclass(frozen=True)
class PhoneOptions:
    auth: AuthMode = AuthMode.NONE
    delay_s: float = 0.0  # added before every message the phone sends: a slow link
    features: tuple[str, ...] = FEATURES


class EmulatedPhone:
    """A running emulated phone: ``port``, ``serial`` (``127.0.0.1:PORT``), ``stop()``, ``unplug()``."""

    def __init__(self, layout: PhoneLayout, server: socket.socket, options: PhoneOptions) -> None:
        self.layout = layout
        self.options = options
        self._server = server
        self.port: int = server.getsockname()[1]
        self.serial = f"127.0.0.1:{self.port}"
        self._connections: set[_Connection] = set()
        self._processes: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name=f"emulated-phone-{self.port}", daemon=True)
        self._thread.start()

    @property
    def root(self) -> Path:
        return self.layout.root

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(self, sock)
            with self._lock:
                self._connections.add(connection)
            threading.Thread(target=connection.serve, daemon=True).start()

    def forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)

    def track(self, process: subprocess.Popen) -> None:
        with self._lock:
            self._processes = [p for p in self._processes if p.poll() is None] + [process]

    def unplug(self) -> None:
        """Drop every host connection (a pulled cable); the phone and what runs on it stay."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.drop()

    def stop(self) -> None:
        """Power off: stop listening, drop the hosts, kill everything the shells started (background jobs too)."""
        self._stopped.set()
        try:
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone leaves it listening)
        except OSError:
            pass
        try:
            self._server.close()
        except OSError:
            pass
        self.unplug()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            kill_session(process.pid)
            process.wait()
        self._thread.join(timeout=5)

    def __enter__(self) -> EmulatedPhone:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_emulated_phone(
    root_dir: Path,
    *,
    port: int = 0,
    auth: AuthMode = AuthMode.NONE,
    rootfs: Path | None = None,
    delay_s: float = 0.0,
    features: tuple[str, ...] = FEATURES,
    host: str = "127.0.0.1",
) -> EmulatedPhone:
    """Create the phone folder ``root_dir`` and serve ADB on ``host:port`` (0: a free port) in this process.

    With ``rootfs`` (a built arm64 rootfs, :mod:`edgesep.devices.emulated`) the phone's ``python3`` is
    that arm64 Python under qemu.  ``delay_s`` slows every message (a slow link); ``features`` is what the
    CNXN banner advertises (without ``shell_v2`` the host falls back to the raw shell: no exit codes).
    Connect with ``adb connect 127.0.0.1:PORT``.
    """
    layout = make_phone(root_dir, rootfs=rootfs)
    server = socket.create_server((host, port))
    return EmulatedPhone(layout, server, PhoneOptions(auth=AuthMode(auth), delay_s=delay_s, features=tuple(features)))


@dataclass
class _Connection:
    phone: EmulatedPhone
    sock: socket.socket
    streams: dict[int, Stream] = field(default_factory=dict)
    max_payload: int = MAX_PAYLOAD
    online: bool = False
    token: bytes = b""

    def __post_init__(self) -> None:
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)

    def __hash__(self) -> int:
        return id(self)

    def send(self, message: Message) -> None:
        with self._send_lock:
            if self.phone.options.delay_s:
                time.sleep(self.phone.options.delay_s)
            try:
                self.sock.sendall(message.encode())
            except OSError:
                raise StreamClosed() from None

    def drop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def serve(self) -> None:
        try:
            while True:
                self.handle(read_message(self.sock))
        except (EOFError, OSError, ProtocolError, StreamClosed):
            pass
        finally:
            for stream in list(self.streams.values()):
                stream.remote_closed()
            self.sock.close()
            self.phone.forget(self)

    def handle(self, message: Message) -> None:
        if message.command == A_CNXN:
            self.max_payload = max(4096, min(MAX_PAYLOAD, message.arg1))
            self.online = False
            self.challenge()
        elif message.command == A_AUTH:
            self.authenticate(message)
        elif not self.online:
            return  # adbd ignores everything else before the handshake
        elif message.command == A_OPEN:
            self.open(message)
        elif message.command == A_OKAY:
            stream = self.streams.get(message.arg1)
            if stream is not None:
                stream.acknowledged()
        elif message.command == A_WRTE:
            stream = self.streams.get(message.arg1)
            if stream is not None:
                stream.received(message.data)
                self.send(Message(A_OKAY, message.arg1, message.arg0))
        elif message.command == A_CLSE:
            stream = self.streams.pop(message.arg1, None)
            if stream is not None:
                stream.remote_closed()

    def challenge(self) -> None:
        mode = self.phone.options.auth
        if mode is AuthMode.SILENT:
            return
        if mode is AuthMode.NONE:
            self.connect()
            return
        self.token = os.urandom(TOKEN_SIZE)
        self.send(Message(A_AUTH, AUTH_TOKEN, 0, self.token))

    def authenticate(self, message: Message) -> None:
        mode = self.phone.options.auth
        if message.arg0 == AUTH_SIGNATURE and self.token:
            if any(key.verifies(self.token, message.data) for key in self._trusted_keys()):
                self.connect()
            else:
                self.token = os.urandom(TOKEN_SIZE)
                self.send(Message(A_AUTH, AUTH_TOKEN, 0, self.token))
        elif message.arg0 == AUTH_RSAPUBLICKEY and mode is AuthMode.ACCEPT:
            key = parse_public_key(message.data)
            if key is not None:
                self._trust(key)
                self.connect()
        # REJECT: the dialog is never answered, the host stays "unauthorized"

    def _trusted_keys(self) -> list[AdbPublicKey]:
        path = self.phone.root / KEYS_FILE
        lines = path.read_text(encoding="ascii", errors="replace").splitlines() if path.is_file() else []
        return [key for key in map(lambda line: parse_public_key(line.encode()), lines) if key is not None]

    def _trust(self, key: AdbPublicKey) -> None:
        path = self.phone.root / KEYS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="ascii") as handle:
            handle.write(key.text + "\n")

    def connect(self) -> None:
        props = self.phone.layout.properties
        banner = (
            f"device::ro.product.name={props['ro.product.name']};ro.product.model={props['ro.product.model']};"
            f"ro.product.device={props['ro.product.device']};features={','.join(self.phone.options.features)}"
        )
        self.online = True
        self.send(Message(A_CNXN, A_VERSION, self.max_payload, banner.encode()))

    def open(self, message: Message) -> None:
        service = message.data.rstrip(b"\x00").decode("utf-8", errors="surrogateescape")
        name, args, command = parse_service(service)
        if name not in ("shell", "exec", "sync"):
            self.send(Message(A_CLSE, 0, message.arg0))
            return
        stream = Stream(next(self._ids), message.arg0, send=self.send, max_payload=self.max_payload)
        self.streams[stream.local_id] = stream
        self.send(Message(A_OKAY, stream.local_id, message.arg0))
        if name == "sync":
            threading.Thread(target=self._run, args=(stream, run_sync, self.phone.layout), daemon=True).start()
            return
        v2 = name == "shell" and "v2" in args
        options = dict(command=command, v2=v2, merge_stderr=name == "shell" and not v2, register=self.phone.track)
        threading.Thread(target=self._run, args=(stream, run_shell, self.phone.layout), kwargs=options, daemon=True).start()

    def _run(self, stream: Stream, target, *args, **kwargs) -> None:
        try:
            target(stream, *args, **kwargs)
        except StreamClosed:
            pass
        finally:
            self.streams.pop(stream.local_id, None)

"""The ADB transport message (AOSP ``adb/protocol.txt``): a 24-byte little-endian header + payload.

Header: command, arg0, arg1, data_length, data_check, magic (= command ^ 0xffffffff).
``data_check`` is the byte SUM of the payload (not a CRC32, whatever the old docs call it);
from protocol version 0x01000001 on, peers may skip checking it, but the host checks the
device's CNXN before it knows the version, so this side always fills it in.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass


def _command(name: bytes) -> int:
    return int.from_bytes(name, "little")


A_CNXN = _command(b"CNXN")
A_AUTH = _command(b"AUTH")
A_OPEN = _command(b"OPEN")
A_OKAY = _command(b"OKAY")
A_CLSE = _command(b"CLSE")
A_WRTE = _command(b"WRTE")
A_VERSION = 0x01000001  # the version that may skip data_check
MAX_PAYLOAD = 256 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
TOKEN_SIZE = 20
HEADER = struct.Struct("<6I")
MAX_ACCEPTED_PAYLOAD = 1024 * 1024  # what adb 29's host sends at most


@dataclass(frozen=True)
class Message:
    command: int
    arg0: int
    arg1: int
    data: bytes = b""

    @property
    def name(self) -> str:
        return self.command.to_bytes(4, "little").decode("ascii", errors="replace")

    def encode(self) -> bytes:
        check = sum(self.data) & 0xFFFFFFFF
        header = HEADER.pack(self.command, self.arg0, self.arg1, len(self.data), check, self.command ^ 0xFFFFFFFF)
        return header + self.data


class ProtocolError(Exception):
    """The peer sent something that is not an ADB message."""


def read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 65536))
        if not chunk:
            raise EOFError("connection closed")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket) -> Message:
    command, arg0, arg1, length, _check, magic = HEADER.unpack(read_exactly(sock, HEADER.size))
    if magic != command ^ 0xFFFFFFFF:
        raise ProtocolError(f"bad magic 0x{magic:08x} for command 0x{command:08x}")
    if length > MAX_ACCEPTED_PAYLOAD:
        raise ProtocolError(f"payload of {length} bytes is larger than {MAX_ACCEPTED_PAYLOAD}")
    return Message(command, arg0, arg1, read_exactly(sock, length) if length else b"")

"""ADB public-key authentication, device side: check the host's SIGNATURE of our TOKEN.

The host signs the 20-byte token with ``RSA_sign(NID_sha1, token, ...)`` (PKCS#1 v1.5 with the
SHA-1 DigestInfo; the token stands in for the digest).  Its public key arrives (AUTH
RSAPUBLICKEY) as base64 of AOSP's ``RSAPublicKey`` struct — modulus size in words, n0inv,
little-endian modulus, rr, exponent (all little-endian) — followed by `` user@host``.
A real phone asks the user before trusting a new key; the emulator answers by its AuthMode.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

SHA1_DIGEST_INFO = bytes.fromhex("3021300906052b0e03021a05000414")


@dataclass(frozen=True)
class AdbPublicKey:
    modulus: int
    exponent: int
    size_bytes: int
    text: str  # the line as adb sent it (base64 + " user@host"), as stored in adb_keys

    def verifies(self, token: bytes, signature: bytes) -> bool:
        if len(signature) != self.size_bytes:
            return False
        recovered = pow(int.from_bytes(signature, "big"), self.exponent, self.modulus).to_bytes(self.size_bytes, "big")
        payload = SHA1_DIGEST_INFO + token
        padding = self.size_bytes - len(payload) - 3
        return padding >= 8 and recovered == b"\x00\x01" + b"\xff" * padding + b"\x00" + payload


def parse_public_key(data: bytes) -> AdbPublicKey | None:
    """The key of an AUTH RSAPUBLICKEY payload (or an adb_keys line); None when it is not one."""
    text = data.rstrip(b"\x00").decode("ascii", errors="replace").strip()
    try:
        blob = base64.b64decode(text.split()[0], validate=True)
    except (IndexError, binascii.Error):
        return None
    if len(blob) < 8:
        return None
    words = struct.unpack_from("<I", blob)[0]
    size = words * 4
    if len(blob) != 8 + 2 * size + 4 or size < 64:
        return None
    modulus = int.from_bytes(blob[8 : 8 + size], "little")
    exponent = struct.unpack_from("<I", blob, 8 + 2 * size)[0]
    return AdbPublicKey(modulus=modulus, exponent=exponent, size_bytes=size, text=text)

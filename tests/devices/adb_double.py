#!/usr/bin/env python3
"""TEST DOUBLE of the ``adb`` command line (not adb): one fake device whose filesystem is a local folder.

Implements the real syntax this project uses: ``adb devices``, ``adb -s SERIAL get-state``,
``adb -s SERIAL push LOCAL REMOTE``, ``adb -s SERIAL pull REMOTE LOCAL`` and
``adb -s SERIAL shell '<one command string>'`` (run by ``sh -c`` in the device folder;
device paths under /data/local/tmp are mapped into ``$ADB_DOUBLE_ROOT``).
Environment:
  ADB_DOUBLE_ROOT          folder standing for the device's filesystem (required)
  ADB_DOUBLE_SERIAL        serial of the attached device (default "emulator-5554")
  ADB_DOUBLE_STATE         device | offline | unauthorized (default device)
  ADB_DOUBLE_DISCONNECT_S  a shell command running longer than this is cut off ("error: closed")
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

MAPPED = "/data/local/tmp"
ROOT = Path(os.environ.get("ADB_DOUBLE_ROOT", "/nonexistent")).resolve()
SERIAL = os.environ.get("ADB_DOUBLE_SERIAL", "emulator-5554")
STATE = os.environ.get("ADB_DOUBLE_STATE", "device")


def to_host(text: str) -> str:
    return text.replace(MAPPED, f"{ROOT}{MAPPED}")


def to_device(text: str) -> str:
    return text.replace(f"{ROOT}{MAPPED}", MAPPED)


def fail(message: str, code: int = 1) -> int:
    print(message, file=sys.stderr)
    return code


def check_device(serial: str | None) -> int | None:
    if serial is not None and serial != SERIAL:
        return fail(f"adb: device '{serial}' not found")
    if STATE == "unauthorized":
        return fail(
            "adb: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n"
            "Try 'adb kill-server' if that seems wrong.\nOtherwise check for a confirmation dialog on your device."
        )
    if STATE == "offline":
        return fail("adb: device offline")
    return None


def shell(command: str) -> int:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / 'system' / 'bin'}:{env.get('PATH', '')}"
    limit = float(os.environ["ADB_DOUBLE_DISCONNECT_S"]) if os.environ.get("ADB_DOUBLE_DISCONNECT_S") else None
    process = subprocess.Popen(
        ["sh", "-c", to_host(command)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        # The USB link dropped: the shell dies, but what it started in the background (the agent
        # under `timeout`, its own process group) keeps running on the phone, as on a real device.
        os.killpg(process.pid, signal.SIGKILL)
        process.stdout.close()
        process.stderr.close()
        return fail("error: closed")
    sys.stdout.write(to_device(stdout))
    sys.stderr.write(to_device(stderr))
    return process.returncode


def push(local: str, remote: str) -> int:
    source, target = Path(local), Path(to_host(remote))
    if not source.exists():
        return fail(f"adb: error: cannot stat '{local}': No such file or directory")
    if remote.endswith("/") or target.is_dir():
        target = target / source.name
    if not target.parent.is_dir():
        return fail(f"adb: error: failed to copy '{local}' to '{remote}': remote No such file or directory")
    shutil.copyfile(source, target)
    print(f"{local}: 1 file pushed, 0 skipped.")
    return 0


def pull(remote: str, local: str) -> int:
    source, target = Path(to_host(remote)), Path(local)
    if not source.exists():
        return fail(f"adb: error: failed to stat remote object '{remote}': No such file or directory")
    if target.is_dir():
        target = target / source.name
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
        count = sum(1 for p in target.rglob("*") if p.is_file())
    else:
        shutil.copyfile(source, target)
        count = 1
    print(f"{remote}/: {count} files pulled, 0 skipped.")
    return 0


def main(argv: list[str]) -> int:
    serial = None
    if len(argv) >= 2 and argv[0] == "-s":
        serial, argv = argv[1], argv[2:]
    if not argv:
        return fail("adb: no command given")
    command, rest = argv[0], argv[1:]
    if command == "devices":
        print("List of devices attached")
        print(f"{SERIAL}\t{STATE}")
        return 0
    problem = check_device(serial)
    if command == "get-state":
        if problem is not None:
            return problem
        print("device")
        return 0
    if problem is not None:
        return problem
    if command == "shell" and len(rest) == 1:
        return shell(rest[0])
    if command == "push" and len(rest) == 2:
        return push(*rest)
    if command == "pull" and len(rest) == 2:
        return pull(*rest)
    return fail(f"adb double: unsupported command line: {' '.join(argv)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

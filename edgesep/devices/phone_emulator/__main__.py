"""``python -m edgesep.devices.phone_emulator serve --root DIR [--port N] [--auth none|accept|reject|silent]
[--rootfs ROOTFS] [--state-file FILE]``: serve the emulated phone until SIGTERM / Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from edgesep.devices.phone_emulator.background import PhoneStatus, write_state
from edgesep.devices.phone_emulator.server import AuthMode, start_emulated_phone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgesep.devices.phone_emulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve an emulated phone (adbd over TCP) until stopped")
    serve.add_argument("--root", type=Path, required=True, help="folder standing for the phone's file system")
    serve.add_argument("--port", type=int, default=0, help="TCP port (0: a free one)")
    serve.add_argument("--auth", choices=[m.value for m in AuthMode], default="none")
    serve.add_argument("--rootfs", type=Path, default=None, help="arm64 rootfs whose Python becomes the phone's python3")
    serve.add_argument("--delay", type=float, default=0.0, help="seconds added to every message (a slow link)")
    serve.add_argument("--state-file", type=Path, default=None)
    args = parser.parse_args(argv)
    phone = start_emulated_phone(args.root, port=args.port, auth=AuthMode(args.auth), rootfs=args.rootfs, delay_s=args.delay)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    if args.state_file is not None:
        status = PhoneStatus(pid=os.getpid(), port=phone.port, serial=phone.serial, root=str(phone.root),
                             rootfs=str(args.rootfs) if args.rootfs else None, auth=args.auth)  # fmt: skip
        write_state(status, args.state_file)
    print(f"emulated phone {phone.serial} serving {phone.root}", flush=True)
    while not done.wait(1.0):
        pass
    phone.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

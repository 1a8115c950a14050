"""Faults on the SSH path against the real local sshd (#9): read-only and full remote temp dirs, flaky links.

The read-only and full folders are real tmpfs mounts (``mount -t tmpfs``, needs root; skipped
otherwise).  The flaky link is a TCP forwarder in front of the test sshd that drops the first
connections, so ssh itself sees ``Connection closed`` exactly as on a flaky network.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from device_models import reference_outputs

from edgesep.devices.base import AGENT_PATH, RunSpec
from edgesep.devices.ssh import SshLinkError
from edgesep.errors import DeviceError

QUICK = RunSpec(runs=3, warmup=1, threads=1)


@pytest.fixture()
def tmpfs(tmp_path):
    """A factory for small tmpfs mounts (size in KiB, optionally read-only); unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounts: list[Path] = []

    def mount(name: str, *, size_kb: int = 64, read_only: bool = False) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        options = f"size={size_kb}k" + (",ro" if read_only else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_read_only_workdir_names_device_folder_and_command(ssh_device, tiny_models, tmp_path, tmpfs):
    workdir = tmpfs("readonly", read_only=True)
    device = dataclasses.replace(ssh_device, workdir=str(workdir))
    results = tmp_path / "res"
    with pytest.raises(DeviceError) as caught:
        device.run({"f": tiny_models["float"]}, None, results, spec=QUICK)
    message = str(caught.value)
    assert f"test-ssh ({device.address})" in message
    assert f"cannot create a temp dir in {workdir}" in message
    assert "Read-only file system" in message and f"tried: mktemp -d {workdir}/edgesep-XXXXXXXX" in message
    assert "\n" not in message
    assert not isinstance(caught.value, SshLinkError)  # not a link failure: no retry
    assert list(workdir.iterdir()) == [] and list(results.glob("*.json")) == []


def test_full_remote_disk_fails_the_push_and_leaves_nothing(ssh_device, tiny_models, tmp_path, tmpfs):
    workdir = tmpfs("full", size_kb=64)
    filler = workdir / "filler"
    with open(filler, "wb", buffering=0) as handle:  # fill the disk up to the last block
        try:
            while True:
                handle.write(b"\0" * 1024)
        except OSError:
            pass
    free_kb = os.statvfs(workdir).f_bavail * os.statvfs(workdir).f_frsize // 1024
    assert free_kb < 4
    device = dataclasses.replace(ssh_device, workdir=str(workdir))
    results = tmp_path / "res"
    with pytest.raises(DeviceError) as caught:
        device.run({"f": tiny_models["float"]}, None, results, spec=QUICK)
    message = str(caught.value)
    assert f"test-ssh ({device.address})" in message and str(workdir) in message
    assert "pushing the agent and inputs failed" in message and "tried: scp to" in message
    assert f"KiB free in {workdir}: the device's disk is full" in message
    assert "\n" not in message
    assert sorted(p.name for p in workdir.iterdir()) == ["filler"]  # the remote temp dir was removed
    assert list(results.glob("*.json")) == []


@pytest.mark.parametrize(
    ("spare_pages", "expected"),
    [(0, "pushing model tiny_float.tflite failed: .*the device's disk is full"), (1, "agent failed: .*No space left on device")],
    ids=["model-does-not-fit", "agent-cannot-write"],
)
def test_disk_fills_up_later_in_the_run(ssh_device, tiny_models, tmp_path, tmpfs, spare_pages, expected):
    """Room for the temp dir and the agent (+ the model): the error names the stage that ran out of space."""
    page = 4096
    workdir = tmpfs("almost-full", size_kb=64)
    pages = -(-AGENT_PATH.stat().st_size // page) + spare_pages  # tmpfs allocates whole pages
    (workdir / "filler").write_bytes(b"\0" * ((64 * 1024 // page - pages) * page))
    device = dataclasses.replace(ssh_device, workdir=str(workdir))
    with pytest.raises(DeviceError, match=expected) as caught:
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res", spec=QUICK)
    assert f"test-ssh ({device.address})" in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in workdir.iterdir()) == ["filler"]
    assert list((tmp_path / "res").glob("*.json")) == []


class DroppingForwarder:
    """127.0.0.1:<port> -> the test sshd; closes the first ``drop`` connections right after accepting."""

    def __init__(self, target_port: int, *, drop: int) -> None:
        self.target_port = target_port
        self.drop = drop
        self.accepted = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.drop:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


@pytest.fixture()
def flaky(ssh_device, sshd, tmp_path):
    """A device behind a forwarder that drops its first N connections (host key pinned for the new port)."""
    made: list[DroppingForwarder] = []

    def make(drop: int, *, retries: int):
        forwarder = DroppingForwarder(sshd.port, drop=drop)
        made.append(forwarder)
        key_type, key = (sshd.folder / "host_ed25519.pub").read_text().split()[:2]
        known = tmp_path / f"known_hosts_{forwarder.port}"
        known.write_text(f"[127.0.0.1]:{forwarder.port} {key_type} {key}\n")
        workdir = tmp_path / f"remote_{forwarder.port}"
        workdir.mkdir()
        device = dataclasses.replace(ssh_device, port=forwarder.port, known_hosts=known, workdir=str(workdir), retries=retries)
        return device, forwarder, workdir

    yield make
    for forwarder in made:
        forwarder.close()


def test_dropped_connection_before_the_run_is_retried(flaky, tiny_models, tiny_inputs, tmp_path):
    device, forwarder, workdir = flaky(1, retries=1)
    results = device.run({"f": tiny_models["float"]}, tiny_inputs, tmp_path / "res", spec=QUICK)
    error = float(np.max(np.abs(results["f"].outputs - reference_outputs(tiny_models["float"], tiny_inputs))))
    assert results["f"].complete and error <= 1e-6
    # mktemp (dropped + retried), push agent, push model, run, pull, cleanup
    assert forwarder.accepted == 7
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(("drop", "retries", "attempts"), [(1, 0, 1), (3, 2, 3)])
def test_retries_are_bounded_and_reported(flaky, tiny_models, tmp_path, drop, retries, attempts):
    device, forwarder, workdir = flaky(drop, retries=retries)
    with pytest.raises(SshLinkError, match=rf"cannot reach .*over ssh .*gave up after {attempts} attempts?\)"):
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res", spec=QUICK)
    assert forwarder.accepted == attempts
    assert list(workdir.iterdir()) == [] and list((tmp_path / "res").glob("*.json")) == []


def test_profile_retries_reach_the_device(tmp_path):
    from edgesep.devices import open_device
    from edgesep.errors import ConfigError

    profile = tmp_path / "board.toml"
    profile.write_text('name = "board"\nkind = "ssh"\nhost = "10.0.0.2"\nretries = 3\n')
    assert open_device(str(profile)).retries == 3
    assert open_device("ssh://pi@10.0.0.2").retries == 1
    profile.write_text('name = "board"\nkind = "ssh"\nhost = "10.0.0.2"\nretries = 99\n')
    with pytest.raises(ConfigError, match="'retries' must be between 0 and 10"):
        open_device(str(profile))


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("ssh://pi@host;touch x", "host"),
        ("ssh://pi@$(touch x)", "host"),
        ("ssh://`touch x`@host", "user"),
        ("ssh://-oProxyCommand=touch x@host", "user"),
    ],
)
def test_device_strings_are_validated_before_any_ssh(url, field):
    from edgesep.devices import open_device
    from edgesep.errors import InputError

    with pytest.raises(InputError, match=rf"bad ssh {field} "):
        open_device(url)
    assert open_device("ssh://pi@[::1]:2222").address == "pi@::1:2222"


def test_host_key_failure_is_not_retried(flaky, tiny_models, tmp_path):
    device, forwarder, workdir = flaky(0, retries=3)
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{forwarder.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWyfBpUOs/lR3Xp1Glq6vBkV1c2Fh8M\n")
    device = dataclasses.replace(device, known_hosts=wrong)
    with pytest.raises(DeviceError, match="host key verification failed") as caught:
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res", spec=QUICK)
    assert not isinstance(caught.value, SshLinkError) and "gave up" not in str(caught.value)
    assert forwarder.accepted == 1

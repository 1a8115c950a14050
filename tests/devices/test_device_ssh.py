"""The SSH device against a real OpenSSH server on 127.0.0.1 (real host-key checking, real agent)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from device_models import agent_processes, reference_outputs

from edgesep.devices.base import DeviceRunError, RunSpec
from edgesep.errors import DeviceError


def _remote_dirs(workdir: Path) -> list[Path]:
    return sorted(workdir.glob("edgesep-*"))


def test_ssh_run_matches_local_reference(ssh_device, tiny_models, tiny_inputs, tmp_path):
    workdir = tmp_path / "remote"
    workdir.mkdir()
    device = dataclasses.replace(ssh_device, workdir=str(workdir))
    results = device.run(tiny_models, tiny_inputs, tmp_path / "res", spec=RunSpec(runs=6, warmup=1, threads=1))
    for tag in ("float", "int8"):
        assert results[tag].complete and results[tag].model_name == tiny_models[tag].name
        assert float(np.max(np.abs(results[tag].outputs - reference_outputs(tiny_models[tag], tiny_inputs)))) <= 1e-6
    assert _remote_dirs(workdir) == []  # the remote temp dir was removed


def test_unreachable_port_names_host_and_command(ssh_device, tmp_path, tiny_models):
    from sshd_server import free_port

    port = free_port()
    device = dataclasses.replace(ssh_device, port=port, connect_timeout_s=3)
    with pytest.raises(DeviceError, match=rf"cannot reach .*@127\.0\.0\.1:{port} over ssh \(connection refused.*tried: ssh -p {port}"):
        device.run({"f": tiny_models["float"]}, None, tmp_path)
    emulated = dataclasses.replace(device, emulated=True)  # the pi-emulated profile on a machine with no sshd set up
    with pytest.raises(DeviceError, match="connection refused.*pi-emulated-local runs the same emulated Pi without ssh"):
        emulated.run({"f": tiny_models["float"]}, None, tmp_path)


def test_wrong_key_is_an_auth_failure(ssh_device, tmp_path, tiny_models):
    import subprocess

    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    device = dataclasses.replace(ssh_device, key=other)
    with pytest.raises(DeviceError, match="authentication failed"):
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res")


def test_unknown_host_key_is_refused(ssh_device, tmp_path, tiny_models):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    device = dataclasses.replace(ssh_device, known_hosts=empty)
    with pytest.raises(DeviceError, match="host key verification failed"):
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res")


def test_remote_python_without_runtime_says_what_to_install(ssh_device, tmp_path, tiny_models):
    blocker = tmp_path / "no-runtime"
    for package in ("ai_edge_litert", "tflite_runtime", "tensorflow"):
        (blocker / package).mkdir(parents=True)
        (blocker / package / "__init__.py").write_text("raise ImportError('not installed here')\n")
    workdir = tmp_path / "remote"
    workdir.mkdir()
    device = dataclasses.replace(ssh_device, python=("env", f"PYTHONPATH={blocker}", sys.executable), workdir=str(workdir))
    with pytest.raises(DeviceRunError, match="no TFLite interpreter found.*pip install ai-edge-litert"):
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res")
    assert _remote_dirs(workdir) == []
    missing = dataclasses.replace(ssh_device, python=("python-does-not-exist",), workdir=str(workdir))
    with pytest.raises(DeviceRunError, match="not found on the device"):
        missing.run({"f": tiny_models["float"]}, None, tmp_path / "res2")


def test_timeout_keeps_partial_results_and_leaves_nothing_behind(ssh_device, tmp_path, tiny_models):
    workdir = tmp_path / "remote"
    workdir.mkdir()
    device = dataclasses.replace(ssh_device, workdir=str(workdir))
    spec = RunSpec(runs=10**8, warmup=0, timeout_s=1.5)
    with pytest.raises(DeviceRunError, match="timeout after 1.5 s") as caught:
        device.run({"f": tiny_models["float"]}, None, tmp_path / "res", spec=spec)
    partial = caught.value.results["f"]
    assert not partial.complete and len(partial.latencies_ms) > 0
    assert (tmp_path / "res" / "f.results.json").is_file()
    assert _remote_dirs(workdir) == []
    assert agent_processes(str(workdir)) == []


def test_connection_lost_mid_run_keeps_partial_results(ssh_device, sshd, tmp_path, tiny_models):
    import signal
    import threading
    import time

    workdir = tmp_path / "remote"
    workdir.mkdir()
    device = dataclasses.replace(ssh_device, workdir=str(workdir))

    def drop_connection() -> None:
        """Once the agent has written results, kill the sshd processes serving the session (our own sshd's children)."""
        for _ in range(1200):
            if list(workdir.glob("edgesep-*/out/f.results.json")):
                break
            time.sleep(0.1)
        time.sleep(0.5)
        for proc in Path("/proc").iterdir():
            try:
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == sshd.process.pid:
                os.kill(int(proc.name), signal.SIGKILL)

    dropper = threading.Thread(target=drop_connection)
    dropper.start()
    try:
        with pytest.raises(DeviceRunError, match="lost the device during the run.*partial results kept") as caught:
            device.run({"f": tiny_models["float"]}, None, tmp_path / "res", spec=RunSpec(runs=10**8, warmup=0))
    finally:
        dropper.join()
    partial = caught.value.results["f"]
    assert not partial.complete and len(partial.latencies_ms) > 0
    assert _remote_dirs(workdir) == []
    for _ in range(50):  # the cleanup TERMed the orphaned agent; give it a moment to exit
        if not agent_processes(str(workdir)):
            break
        time.sleep(0.2)
    assert agent_processes(str(workdir)) == []

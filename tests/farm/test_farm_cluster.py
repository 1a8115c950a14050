"""`edgesep farm` on a real two-node Ray cluster on this machine (tests/farm/ray_nodes.py): the head node offers
device:local, a second node device:pi-emulated-local (the emulated Pi under qemu). Each node has one CPU and a
100 MB object store; the sweep is the digits default x 2 int8 recipes x 2 devices = 4 cells."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

# torch's optimizers import torch._dynamo, which imports triton; triton's C extension segfaults when it is
# first imported after TensorFlow. Import it at collection, before TF.
import torch._dynamo  # noqa: F401,E402
from farm_sweeps import write_sweep
from ray_nodes import RayNodes

from edgesep.cli.main import main

pytest.importorskip("ray")
pytestmark = pytest.mark.slow
DEVICES = ["local", "pi-emulated-local"]


@pytest.fixture(scope="module")
def cluster(arm64_rootfs):
    """One cluster for the module (starting one costs ~15 s); the kill test replaces the node it kills."""
    nodes = RayNodes()
    try:
        nodes.start("head", devices=["local"], head=True)
        nodes.start("pi-node", devices=["pi-emulated-local"])
        nodes.wait_for_devices(DEVICES)
        yield nodes
    finally:
        nodes.stop()


def farm_json(cluster: RayNodes, *argv: str) -> tuple[int, dict]:
    """`edgesep farm ... --json` as a user runs it: a new process, the cluster's driver (its token in the env)."""
    done = subprocess.run(
        [sys.executable, "-m", "edgesep", "-q", "farm", *argv, "--json"], capture_output=True, text=True, env=cluster.env(), timeout=900
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {"err": done.stderr[-3000:]}


def cells(payload: dict) -> dict[tuple[str, str], dict]:
    return {(cell["recipe"], cell["device"]): cell for cell in payload["cells"]}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_node_sweep_equals_edgesep_run_cell_by_cell(cluster, tmp_path, capsys):
    sweep = write_sweep(tmp_path / "sweep", devices=DEVICES)
    code, payload = farm_json(cluster, str(sweep), "--address", cluster.address)
    assert code == 0, payload
    assert payload["nodes"] == 2 and payload["counts"] == {"ok": 4, "cached": 0, "lost": 0, "failed": 0}
    by_cell = cells(payload)
    # each device's cells ran on the node the device is attached to: two different nodes
    assert len({by_cell[(r, "local")]["node"] for r in ("int8", "int8-percentile")}) == 1
    assert by_cell[("int8", "local")]["node"] != by_cell[("int8", "pi-emulated-local")]["node"]
    assert by_cell[("int8", "pi-emulated-local")]["row"]["emulated"] is True

    for recipe, extra in (("int8", ""), ("int8-percentile", 'activation_range = "percentile"\n')):
        config = tmp_path / f"run-{recipe}.toml"
        config.write_text(
            f'output = "run-{recipe}"\n[model]\nfactory = "default"\ninput_shape = [1, 1, 16, 16]\n'
            f'[calibration]\nsamples = 100\n[quantize]\nmodes = ["int8"]\n{extra}'
            "[validate]\nsamples = 60\nruns = 5\nwarmup = 1\n",
            encoding="utf-8",
        )
        for device in DEVICES:
            assert main(["-q", "run", str(config), "--device", device, "--json"]) == 0
            run_rows = {row["variant"]: row for row in json.loads(capsys.readouterr().out)["rows"]}
            cell = by_cell[(recipe, device)]
            for key in ("accuracy", "agreement", "cosine", "max_abs", "size_kb", "samples"):
                assert cell["row"][key] == run_rows["int8"][key], (recipe, device, key)
                assert cell["baseline"][key] == run_rows["float32"][key], (recipe, device, key)
            assert 0.99 < cell["row"]["cosine"] < 1.0 and cell["row"]["samples"] == 60
        # the sweep's int8 model is the very model `edgesep run` makes (bit-exact)
        assert sha256(tmp_path / "sweep" / "out" / "digits" / recipe / "model_int8.tflite") == sha256(
            tmp_path / f"run-{recipe}" / "model_int8.tflite"
        )

    # nothing changed: every cell comes from the cache, without starting Ray
    code, again = farm_json(cluster, str(sweep), "--address", "127.0.0.1:9")  # an address nobody listens on
    assert code == 0 and again["counts"]["cached"] == 4
    assert [c["row"]["cosine"] for c in again["cells"]] == [c["row"]["cosine"] for c in payload["cells"]]


def test_a_node_killed_mid_sweep_loses_only_its_cells_and_a_rerun_completes_them(cluster, tmp_path):
    sweep = write_sweep(tmp_path / "sweep", devices=DEVICES)
    killed: list[str] = []
    finished = threading.Event()

    def kill_the_pi_node_while_it_runs_a_cell() -> None:
        """SIGKILL the Pi's node once the emulated Pi (qemu) runs under it: a cell is on the device right then."""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not finished.is_set():
            running = [line for line in cluster.command_lines("pi-node") if "qemu-aarch64" in line]
            if running:
                cluster.kill("pi-node")
                killed.append(running[0])
                return
            time.sleep(0.1)

    killer = threading.Thread(target=kill_the_pi_node_while_it_runs_a_cell)
    killer.start()
    code, payload = farm_json(cluster, str(sweep), "--address", cluster.address)
    finished.set()
    killer.join()
    assert killed, "the sweep ended before a Pi cell ran"
    assert code == 1, payload  # IncompleteError: some cells lost
    by_cell = cells(payload)
    assert all(by_cell[(r, "local")]["status"] == "ok" for r in ("int8", "int8-percentile")), by_cell
    lost = [key for key, cell in by_cell.items() if cell["status"] == "lost"]
    assert lost and all(device == "pi-emulated-local" for _, device in lost), by_cell
    assert payload["counts"]["failed"] == 0, by_cell
    for key in lost:
        reason = by_cell[key]["reason"]
        assert "node" in reason.lower() or "device:pi-emulated-local" in reason, reason
    kept = {key: cell["row"]["cosine"] for key, cell in by_cell.items() if cell["status"] == "ok"}

    cluster.start("pi-node-2", devices=["pi-emulated-local"])  # the Pi comes back on a new node
    cluster.wait_for_devices(DEVICES)
    code, rerun = farm_json(cluster, str(sweep), "--address", cluster.address)
    assert code == 0, rerun
    again = cells(rerun)
    assert sorted(key for key, cell in again.items() if cell["status"] == "ok") == sorted(lost)
    assert all(again[key]["status"] == "cached" and again[key]["row"]["cosine"] == cosine for key, cosine in kept.items())
    assert all(0.99 < again[key]["row"]["cosine"] < 1.0 for key in lost)


def test_a_stage_that_raises_fails_its_cells_with_the_one_line_reason(tmp_path):
    """Embedded Ray (no address): a model whose ONNX file is not ONNX fails in its prepare task; each of its cells is
    `failed` with edgesep's one-line message, not a Ray traceback; nothing is cached, the command exits 1."""
    (tmp_path / "broken.onnx").write_bytes(b"not an onnx model")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        'devices = ["local"]\n[[models]]\nname = "broken"\nonnx = "broken.onnx"\n[[recipes]]\nname = "dynamic"\nmode = "dynamic"\n',
        encoding="utf-8",
    )
    repo = str(Path(__file__).resolve().parents[2])  # Ray's workers import this checkout's edgesep
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p), "RAY_ADDRESS": ""}
    done = subprocess.run(
        [sys.executable, "-m", "edgesep", "-q", "farm", str(sweep), "--json", "--num-cpus", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    (cell,) = json.loads(done.stdout)["cells"]
    assert cell["status"] == "failed" and "broken.onnx" in cell["reason"] and "Traceback" not in cell["reason"], cell
    assert done.stderr.strip().splitlines()[-1].startswith("edgesep: error: 1 of 1 cells lost or failed")
    state = tmp_path / "edgesep-farm" / "state.json"  # nothing finished: nothing recorded, a re-run tries again
    assert not state.exists() or "validate/" not in state.read_text()

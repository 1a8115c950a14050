"""SIGKILL `edgesep run` at seeded random points (#16), re-run, and get exactly what an uninterrupted run gets.

A small real pipeline (digits SepCNN: export, convert, int8 with 16 calibration samples, validate on `local` with
32 samples and one timed run) is run once without interruption as the reference; its duration T is measured.
Then the same config is run again and again in one folder, each run killed (SIGKILL to its process group, the
local device's agent included) after a seeded random fraction of T, or — every third kill — as soon as an
edgesep temp file appears in the output folder after such a pause (a kill in the middle of a write: those runs go
through tests/slow_writes.py, which holds each written temp file 0.25 s before its rename). After each
kill the run is restarted; when a run finishes, its folder is compared with the reference and a new folder starts.

Byte-identical: the models and their sidecars, the validation outputs (.npz), and the set of files. Results files,
state.json and summary.json: equal without their timings (seconds, *_ms, speed-up, written_at). No temp file left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """output = "out"
devices = ["local"]
[model]
factory = "default"
input_shape = [1, 1, 16, 16]
[calibration]
source = "digits"
samples = 16
[quantize]
modes = ["int8"]
[validate]
data = "digits"
samples = 32
runs = 1
warmup = 0
"""
KILLS = 20
SEED = 16
BYTE_IDENTICAL = ("model.onnx", "model.onnx.json", "model_float32.tflite", "model_float32.tflite.json",
                  "model_int8.tflite", "model_int8.tflite.json", "validate/local/float32.outputs.npz",
                  "validate/local/int8.outputs.npz")  # fmt: skip
TIMING_KEYS = ("seconds", "written_at", "speedup")


def start(folder: Path, *, slow_writes: bool = False) -> subprocess.Popen:
    """``edgesep -q run p.toml`` in its own process group; ``slow_writes``: through tests/slow_writes.py, which
    holds each finished temp file 0.25 s before its rename, so that a kill can land in the middle of a write."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    entry = [str(ROOT / "tests" / "slow_writes.py")] if slow_writes else ["-m", "edgesep"]
    return subprocess.Popen([sys.executable, *entry, "-q", "run", "p.toml", "--json"], cwd=folder, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr


def temp_files(out: Path) -> list[Path]:
    if not out.is_dir():
        return []
    return [p for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith((".tmp", ".part"))]


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not (k in TIMING_KEYS or k.endswith("_ms"))}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def deterministic_state(out: Path) -> dict:
    steps = json.loads((out / "state.json").read_text())["steps"]
    for entry in steps.values():
        entry["digests"] = {k: v for k, v in entry["digests"].items() if k in BYTE_IDENTICAL}
    return without_timings(steps)


def assert_same_folder(out: Path, reference: Path) -> None:
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(reference)) for p in reference.rglob("*") if p.is_file())
    for name in BYTE_IDENTICAL:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    for name in ("validate/local/float32.results.json", "validate/local/int8.results.json",
                 "validate/local/rows.json"):  # fmt: skip
        assert without_timings(json.loads((out / name).read_text())) == without_timings(
            json.loads((reference / name).read_text())), name  # fmt: skip
    assert deterministic_state(out) == deterministic_state(reference)
    got, want = (without_timings(json.loads((f / "summary.json").read_text())) for f in (out, reference))
    assert got["rows"] == want["rows"] and [s["name"] for s in got["steps"]] == [s["name"] for s in want["steps"]]


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_gives_the_uninterrupted_folder(tmp_path):
    work = tmp_path / "work"  # every run uses this path, so the sidecars' absolute paths are the same
    work.mkdir()
    (work / "p.toml").write_text(CONFIG)
    started = time.monotonic()
    finish(start(work))
    duration = time.monotonic() - started
    reference = tmp_path / "reference"
    shutil.move(work / "out", reference)

    rng = np.random.default_rng(SEED)
    kills: list[dict] = []
    folders = 0
    while len(kills) < KILLS:
        during_write = len(kills) % 3 == 2
        process = start(work, slow_writes=during_write)
        pause = float(rng.uniform(0.05, 1.0)) * duration
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
        if during_write:  # then wait (up to 5 s) for a write in progress
            until = time.monotonic() + 5.0
            while process.poll() is None and time.monotonic() < until and not temp_files(work / "out"):
                time.sleep(0.02)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            left = temp_files(work / "out")
            kills.append({"at_s": round(time.monotonic() - deadline + pause, 2), "temps_left": len(left)})
            continue
        finish(process)  # the run got to the end before the kill: the folder must be the reference's
        assert temp_files(work / "out") == []
        assert_same_folder(work / "out", reference)
        shutil.rmtree(work / "out")
        folders += 1
    finish(start(work))
    assert temp_files(work / "out") == []
    assert_same_folder(work / "out", reference)
    folders += 1

    killed_in_writes = sum(1 for k in kills if k["temps_left"])
    print(f"reference run {duration:.1f} s; {len(kills)} kills over {folders} folders; "
          f"{killed_in_writes} left a temp file (killed mid-write); kills: {kills}")  # fmt: skip
    assert len(kills) >= KILLS
    assert killed_in_writes >= 3, kills  # the write-targeted kills hit writes (5 of 6 seen); the re-runs cleaned up
    spread = sorted(k["at_s"] for k in kills)
    assert spread[0] < 0.3 * duration and spread[-1] > 0.6 * duration, spread

"""Ctrl-C during `edgesep run` (#9): one line, exit 130, a consistent folder, and the next run resumes.

A real ``edgesep run`` (digits SepCNN, int8 only, few timed runs) is started in its own process group;
once the export step is recorded in state.json, the whole group gets SIGINT like a terminal's Ctrl-C.
An uninterrupted run of the same config runs alongside as the reference summary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """output = "out"
devices = ["local"]
[model]
factory = "default"
input_shape = [1, 1, 16, 16]
[calibration]
source = "digits"
samples = 100
[quantize]
modes = ["int8"]
[validate]
data = "digits"
runs = 3
warmup = 1
"""
DETERMINISTIC = ("variant", "size_kb", "accuracy", "top5", "agreement", "samples", "complete")


def _start(folder: Path, *extra: str) -> subprocess.Popen:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "p.toml").write_text(CONFIG)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen(
        [sys.executable, "-m", "edgesep", "-q", "run", "p.toml", "--json", *extra],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    """A background job inherits an ignored SIGINT (and Python then keeps ignoring it): restore the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _state_steps(out: Path) -> dict:
    try:
        return json.loads((out / "state.json").read_text())["steps"]
    except (OSError, ValueError, KeyError):
        return {}


def _edgesep_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("edgesep:")]


def test_interrupted_run_leaves_a_consistent_folder_and_resumes(tmp_path):
    reference = _start(tmp_path / "reference")
    victim = _start(tmp_path / "interrupted")
    out = tmp_path / "interrupted" / "out"
    try:
        for _ in range(1800):  # the first finished step recorded (a poll, not a timed assertion)
            if "export" in _state_steps(out) or victim.poll() is not None:
                break
            time.sleep(0.1)
        assert victim.poll() is None, "the run finished before it could be interrupted"
        os.killpg(victim.pid, signal.SIGINT)
        _, stderr = victim.communicate(timeout=300)
    finally:
        if victim.poll() is None:
            os.killpg(victim.pid, signal.SIGKILL)
    assert victim.returncode == 130, stderr
    assert "Traceback" not in stderr and _edgesep_lines(stderr) == ["edgesep: interrupted"], stderr

    # consistent: no temp or partial file; every recorded step's artifacts exist; no summary yet
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith((".tmp", ".part")) or p.name.startswith(".")]
    assert leftovers == []
    recorded = _state_steps(out)
    assert "export" in recorded and "validate-local" not in recorded
    for step in recorded.values():
        assert all((out / artifact).is_file() for artifact in step["artifacts"]), step
    assert not (out / "summary.json").exists()
    onnx_bytes = (out / "model.onnx").read_bytes()

    resumed = _start(tmp_path / "interrupted")
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    steps = {s["name"]: s["status"] for s in json.loads(stdout)["steps"]}
    assert all(steps[name] == "skipped" for name in recorded), steps  # finished steps are not redone
    assert steps["validate-local"] == "ran"
    assert (out / "model.onnx").read_bytes() == onnx_bytes

    ref_stdout, ref_stderr = reference.communicate(timeout=600)
    assert reference.returncode == 0, ref_stderr
    ref_steps = {s["name"]: s["status"] for s in json.loads(ref_stdout)["steps"]}
    assert all(ref_steps[name] == "ran" for name in ("export", "convert", "quantize-int8", "validate-local"))
    got = json.loads((out / "summary.json").read_text())["rows"]
    want = json.loads((tmp_path / "reference" / "out" / "summary.json").read_text())["rows"]
    assert [{k: r[k] for k in DETERMINISTIC} for r in got] == [{k: r[k] for k in DETERMINISTIC} for r in want]
    for mine, theirs in zip(got, want):
        assert abs(mine["cosine"] - theirs["cosine"]) <= 1e-6 and mine["accuracy"] >= 97.0


def test_ctrl_c_inside_a_command_is_one_line_and_exit_130(monkeypatch, tmp_path, capsys):
    """Typer turns KeyboardInterrupt into Exit(130); main() must return it (it used to return 0)."""
    import edgesep.pipeline
    from edgesep.cli.main import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(edgesep.pipeline, "run", interrupted)
    config = tmp_path / "p.toml"
    config.write_text(CONFIG)
    assert main(["-q", "run", str(config)]) == 130
    err = capsys.readouterr().err
    assert _edgesep_lines(err) == ["edgesep: interrupted"] and "Traceback" not in err

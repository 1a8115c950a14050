"""The same 12-cell `edgesep farm` sweep on one local Ray node vs two, printed as a Markdown table (docs/farm.md).

    python bench/farm_scaling.py [--repeats 1]

The sweep: the digits default x 6 recipes (int8 min/max, percentile, mse, per-tensor, float16, dynamic) x 2 devices
(local, pi-emulated-local) = 1 prepare + 6 quantize + 12 validate tasks, every stage run (--force).
* 1 worker: one node, 1 CPU, offering both devices;
* 2 workers: a head node (1 CPU, device:local) and a second node (1 CPU, device:pi-emulated-local).
Both clusters are real `ray start` nodes on this machine (tests/farm/ray_nodes.py). Wall time is the CLI's,
connection included; the machine's 2 cores are shared with whatever else runs, so the ratio is noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "farm"))

from ray_nodes import RayNodes  # noqa: E402

RECIPES = [
    ("int8", ""),
    ("int8-percentile", 'activation_range = "percentile"'),
    ("int8-mse", 'activation_range = "mse"'),
    ("int8-per-tensor", "per_channel = false"),
    ("float16", ""),
    ("dynamic", ""),
]


def sweep_file(folder: Path) -> Path:
    lines = [
        'output = "out"',
        'devices = ["local", "pi-emulated-local"]',
        "",
        "[[models]]",
        'name = "digits"',
        'factory = "default"',
        "input_shape = [1, 1, 16, 16]",
    ]
    for name, extra in RECIPES:
        mode = name if name in ("float16", "dynamic") else "int8"
        lines += ["", "[[recipes]]", f'name = "{name}"', f'mode = "{mode}"'] + ([extra] if extra else [])
    lines += ["", "[calibration]", "samples = 100", "", "[validate]", "samples = 100", "runs = 10", "warmup = 2"]
    path = folder / "sweep.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def stage_seconds(state: Path) -> dict[str, float]:
    """Seconds summed per kind of stage (prepare + quantize on CPUs, validate per device) from OUT/state.json."""
    totals: dict[str, float] = {}
    for name, entry in json.loads(state.read_text())["steps"].items():
        kind = "cpu" if not name.startswith("validate/") else name.rsplit("/", 1)[1]
        totals[kind] = totals.get(kind, 0.0) + (entry["result"].get("seconds") or 0.0)
    return totals


def timed_sweep(nodes: RayNodes, sweep: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "edgesep", "-q", "farm", str(sweep), "--address", nodes.address, "--force", "--json"],
        capture_output=True,
        text=True,
        env=nodes.env(),
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"sweep failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def run(layout: str, sweep: Path) -> tuple[float, dict]:
    nodes = RayNodes()
    try:
        if layout == "1 worker":
            nodes.start("head", devices=["local", "pi-emulated-local"], head=True)
        else:
            nodes.start("head", devices=["local"], head=True)
            nodes.start("pi-node", devices=["pi-emulated-local"])
        nodes.wait_for_devices(["local", "pi-emulated-local"])
        return timed_sweep(nodes, sweep)
    finally:
        nodes.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="farm-scaling-") as tmp:
        sweep = sweep_file(Path(tmp))
        times: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
        stages: dict[str, dict[str, float]] = {}
        for _ in range(args.repeats):
            for layout in times:
                seconds, payload = run(layout, sweep)
                assert payload["counts"]["ok"] == 12, payload["counts"]
                times[layout].append(seconds)
                stages[layout] = stage_seconds(Path(tmp) / "out" / "state.json")
                print(f"{layout}: {seconds:.1f} s ({payload['nodes']} node(s)); task seconds {stages[layout]}", file=sys.stderr)
    best = {layout: min(values) for layout, values in times.items()}
    print("| layout | Ray nodes x CPUs | wall time (s), each run | best (s) | ratio | task s (last run): CPU stages / local / Pi |")
    print("|---|---|---|---|---|---|")
    for layout, values in times.items():
        nodes = "1 x 1" if layout == "1 worker" else "2 x 1"
        ratio = best["1 worker"] / best[layout]
        busy = stages[layout]
        print(
            f"| {layout} | {nodes} | {', '.join(f'{v:.1f}' for v in values)} | {best[layout]:.1f} | {ratio:.2f}x "
            f"| {busy.get('cpu', 0):.1f} / {busy.get('local', 0):.1f} / {busy.get('pi-emulated-local', 0):.1f} |"
        )


if __name__ == "__main__":
    main()

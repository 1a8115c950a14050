#!/usr/bin/env python3
"""TEST DOUBLE of TFLite's ``benchmark_model`` binary: runs the model with ai-edge-litert and prints
the same summary lines (``count=... avg=... std=...`` and ``Inference timings in us: ...``)."""

from __future__ import annotations

import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def main(argv: list[str]) -> int:
    flags = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    started = time.perf_counter()
    interpreter = Interpreter(model_path=flags["graph"], num_threads=int(flags.get("num_threads", 1)))
    interpreter.allocate_tensors()
    init_us = (time.perf_counter() - started) * 1e6
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))

    def timed() -> float:
        begin = time.perf_counter()
        interpreter.invoke()
        return (time.perf_counter() - begin) * 1e6

    first = timed()
    warm = [timed() for _ in range(int(flags.get("warmup_runs", 1)))] or [first]
    runs = np.array([timed() for _ in range(int(flags.get("num_runs", 50)))])
    print("INFO: STARTING!")
    print(f"INFO: Graph: [{flags['graph']}]")
    print(
        f"INFO: count={len(warm)} first={int(first)} curr={int(warm[-1])} min={int(min(warm))} max={int(max(warm))} avg={np.mean(warm):g} std={int(np.std(warm))}"
    )
    print(
        f"INFO: count={runs.size} first={int(runs[0])} curr={int(runs[-1])} min={int(runs.min())} max={int(runs.max())} avg={runs.mean():g} std={int(runs.std())}"
    )
    print(
        f"INFO: Inference timings in us: Init: {int(init_us)}, First inference: {int(first)}, Warmup (avg): {np.mean(warm):g}, Inference (avg): {runs.mean():g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The local device: runs the agent in a subprocess on this host (or under a given Python command)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgesep.devices.base import (
    AGENT_PATH,
    TIMEOUT_GRACE_S,
    RunSpec,
    agent_arguments,
    check_models,
    check_results_dir,
    collect_results,
    finish_run,
    run_process,
    stage_inputs,
)
from edgesep.results import RunResults


@dataclass(frozen=True)
class LocalDevice:
    """Runs ``python agent.py`` here; ``python`` may be another command line (e.g. the qemu line)."""

    name: str = "local"
    python: tuple[str, ...] = (sys.executable,)
    env: Mapping[str, str] = field(default_factory=dict)
    emulated: bool = False

    def run(
        self,
        models: Mapping[str, Path],
        inputs: np.ndarray | None,
        results_dir: Path,
        *,
        spec: RunSpec = RunSpec(),
        force: bool = False,
    ) -> dict[str, RunResults]:
        checked = check_models(models)
        results_dir = check_results_dir(results_dir, list(checked), force=force)
        with tempfile.TemporaryDirectory(prefix="edgesep-local-") as tmp:
            staging = Path(tmp)
            inputs_path = stage_inputs(inputs, staging)
            out_dir = staging / "out"
            argv = [
                *self.python,
                str(AGENT_PATH),
                *agent_arguments(
                    {tag: str(path) for tag, path in checked.items()},
                    inputs=str(inputs_path) if inputs_path else None,
                    out_dir=str(out_dir),
                    spec=spec,
                ),
            ]
            env = dict(os.environ)
            env.update(self.env)
            if self.emulated:
                env["EDGESEP_EMULATED"] = "1"
            outcome = run_process(argv, timeout_s=spec.timeout_s + TIMEOUT_GRACE_S, cwd=staging, env=env)
            collected = collect_results(out_dir, results_dir, list(checked), force=force)
        return finish_run(outcome, collected, list(checked), where=self.name, timeout_s=spec.timeout_s)

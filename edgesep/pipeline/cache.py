"""Content-hash step cache: a step is skipped when its inputs and settings hash to the recorded key.

The state lives in ``<output>/state.json``, rewritten atomically after every
step, so an interrupted run leaves a consistent folder the next run resumes from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgesep.fileio import write_json

STATE_FILE = "state.json"


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_files(path: Path) -> list[Path]:
    """The files a data argument names: the file itself, or every file under a folder (sorted)."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path] if path.is_file() else []


def step_key(settings: Any, inputs: list[Path]) -> str:
    """Hash of the step's settings (JSON-able) and the contents of its input files."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in inputs:
        digest.update(path.name.encode())
        digest.update(file_digest(path).encode() if path.is_file() else b"<missing>")
    return digest.hexdigest()


@dataclass
class StepCache:
    folder: Path
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path) -> StepCache:
        state = folder / STATE_FILE
        entries: dict[str, dict[str, Any]] = {}
        if state.is_file():
            try:
                entries = json.loads(state.read_text()).get("steps", {})
            except (json.JSONDecodeError, AttributeError):
                entries = {}  # a damaged state only costs a re-run
        return cls(folder=folder, entries=entries)

    def is_fresh(self, name: str, key: str, artifacts: list[Path]) -> bool:
        """Same key, and every artifact still has the content recorded when the step wrote it (a damaged or
        edited artifact re-runs its step instead of failing the next one)."""
        entry = self.entries.get(name)
        if not entry or entry.get("key") != key or not all(p.is_file() for p in artifacts):
            return False
        digests = entry.get("digests", {})
        return all(digests.get(self._relative(p)) in (None, file_digest(p)) for p in artifacts)

    def record(self, name: str, key: str, artifacts: list[Path], *, result: dict[str, Any] | None = None) -> None:
        self.entries[name] = {
            "key": key,
            "artifacts": [self._relative(p) for p in artifacts],
            "digests": {self._relative(p): file_digest(p) for p in artifacts if p.is_file()},
            "result": result or {},
        }
        write_json(self.folder / STATE_FILE, {"steps": self.entries}, force=True)

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self.folder)) if path.is_relative_to(self.folder) else str(path)

    def result(self, name: str) -> dict[str, Any]:
        return self.entries.get(name, {}).get("result", {})

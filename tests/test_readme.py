"""The README's Python code blocks run as written, and its two commands are the ones CI uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README has no Python examples"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    printed = capsys.readouterr().out.split()
    assert (tmp_path / "out" / "model_int8.tflite").is_file()
    assert float(printed[0]) < 1e-4  # ONNX vs PyTorch max-abs
    assert float(printed[1]) < 1e-3  # TFLite vs onnxruntime max-abs
    assert float(printed[2]) < 0.6  # int8 size ratio
    assert float(printed[3]) >= 0.98  # int8 top-1 agreement with float
    assert float(printed[4]) >= 0.97  # int8 accuracy on the digits test split


def test_readme_commands_match_ci():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest -q" in README and "python -m pytest -q" in ci
    assert "bash scripts/install.sh && edgesep run" in README and "bash scripts/install.sh" in ci

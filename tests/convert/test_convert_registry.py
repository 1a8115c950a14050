"""The op registry: every module in edgesep/convert/ops is imported by the package, no list to edit, and every
function a module registers (``@register(...)`` or ``register(...)(f)``) is the handler of its op types."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import edgesep.convert.ops

# A fresh interpreter, so that no test's own import of an ops module can stand in for the package's.
PROBE = """
import json, sys
from edgesep.convert.registry import get_handler, supported_ops
handlers = [get_handler(op) for op in supported_ops()]
print(json.dumps({
    "modules": sorted(name.rsplit(".", 1)[1] for name in sys.modules if name.startswith("edgesep.convert.ops.")),
    "handlers": sorted({f"{h.__module__.rsplit('.', 1)[1]}.{h.__name__}" for h in handlers}),
}))
"""


def _is_register(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register"


def _registered(source: Path) -> list[str]:
    """The functions ``source`` registers: decorated with ``@register(...)`` or passed to ``register(...)(f)``."""
    tree = ast.parse(source.read_text())
    decorated = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and any(map(_is_register, n.decorator_list))]
    called = [n.args[0].id for n in ast.walk(tree) if isinstance(n, ast.Call) and _is_register(n.func) and isinstance(n.args[0], ast.Name)]
    return sorted({*decorated, *called})


def test_every_ops_module_is_loaded_and_its_handlers_registered():
    folder = Path(edgesep.convert.ops.__file__).parent
    files = sorted(path for path in folder.glob("*.py") if path.name != "__init__.py")
    root = Path(edgesep.__file__).parent.parent
    probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=root)
    loaded = json.loads(probe.stdout)
    assert loaded["modules"] == [path.stem for path in files]
    expected = sorted(f"{path.stem}.{name}" for path in files for name in _registered(path))
    assert len(expected) == 40  # every registered function in the ops modules (update when a handler is added)
    assert loaded["handlers"] == expected

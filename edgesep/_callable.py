"""Make a step package callable, so ``edgesep.export(...)`` works even after ``import edgesep.export``.

Python binds an imported subpackage as an attribute of its parent, which would shadow a
same-named step function on ``edgesep``.  Giving the package module a ``__call__`` that
forwards to its step function makes both spellings mean the same thing.
"""

from __future__ import annotations

import sys
import types


def make_module_callable(module_name: str, function_name: str) -> None:
    module = sys.modules[module_name]

    class _StepModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

        def __repr__(self) -> str:
            return f"<edgesep step {module_name}: call it like {function_name}()>"

    _StepModule.__name__ = f"{function_name}_step_module"
    module.__class__ = _StepModule

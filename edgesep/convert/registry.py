"""Op-type -> lowering handler table.  Handlers register themselves in edgesep/convert/ops/*.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from edgesep.convert.layout import Value
    from edgesep.convert.lowering import LoweringContext, Node


class Handler(Protocol):
    def __call__(self, node: Node, ctx: LoweringContext) -> list[Value]: ...


_HANDLERS: dict[str, Handler] = {}


def register(*op_types: str) -> Callable[[Handler], Handler]:
    """Decorator: ``@register("Conv")`` makes the function the lowering of that ONNX op type."""

    def decorate(function: Handler) -> Handler:
        for op_type in op_types:
            _HANDLERS[op_type] = function
        return function

    return decorate


def _load_handlers() -> None:
    import edgesep.convert.ops  # noqa: F401  (importing registers every handler)


def get_handler(op_type: str) -> Handler | None:
    _load_handlers()
    return _HANDLERS.get(op_type)


def supported_ops() -> tuple[str, ...]:
    _load_handlers()
    return tuple(sorted(_HANDLERS))

"""Small parsers shared by CLI commands (shapes, model references)."""

from __future__ import annotations

from edgesep.errors import InputError

DEFAULT_MODEL_WORD = "default"
DEFAULT_FACTORY = "edgesep.models.default:load_default_model"


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,3,224,224"`` (or ``1x3x224x224``) -> (1, 3, 224, 224)."""
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").replace(" ", "").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"input shape {text!r} is not a comma-separated list of integers, e.g. 1,3,224,224") from None
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"input shape {text!r} must be positive integers, e.g. 1,3,224,224")
    return shape


def parse_fractions(text: str, *, option: str) -> tuple[float, ...]:
    """``"0.1,0"`` -> (0.1, 0.0); how many and their bounds are the recipe's checks (QuantRecipe.float_ends)."""
    try:
        return tuple(float(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"{option} {text!r} is not two comma-separated fractions, e.g. 0.1,0") from None


def parse_input_shapes(values: list[str] | None) -> tuple[int, ...] | dict[str, tuple[int, ...]] | None:
    """Repeated ``--input-shape``: one bare ``N,C,H,W`` (the only input) or ``NAME:N,C,H,W`` per input."""
    if not values:
        return None
    if len(values) == 1 and ":" not in values[0]:
        return parse_shape(values[0])
    shapes: dict[str, tuple[int, ...]] = {}
    for value in values:
        name, sep, dims = value.rpartition(":")
        if not sep or not name:
            raise InputError(f"input shape {value!r}: with several inputs write NAME:N,C,H,W for each")
        if name in shapes:
            raise InputError(f"input {name!r} is given two shapes")
        shapes[name] = parse_shape(dims)  # type: ignore[assignment]
    return shapes


def resolve_model_reference(text: str) -> str:
    """``default`` -> the trained digits SepCNN factory; anything else is returned as given."""
    return DEFAULT_FACTORY if text == DEFAULT_MODEL_WORD else text

"""QuantRecipe: validation and the JSON round-trip used by the sidecar."""

from __future__ import annotations

import json

import pytest

from edgesep.errors import ConfigError
from edgesep.quantize import PreprocessingSpec, QuantRecipe


def test_default_recipe_is_full_int8_per_channel():
    recipe = QuantRecipe()
    assert (recipe.mode, recipe.per_channel, recipe.samples, recipe.needs_calibration) == ("int8", True, 300, True)
    assert QuantRecipe(mode="dynamic").needs_calibration is False


@pytest.mark.parametrize(
    "recipe",
    [
        QuantRecipe(),
        QuantRecipe(mode="float16"),
        QuantRecipe(
            input_type="uint8",
            output_type="int8",
            per_channel=False,
            samples=17,
            seed=3,
            keep_float=("a/conv", "b"),
            preprocessing=PreprocessingSpec(resize=(8, 8), channel_order="BGR"),
        ),
    ],
)
def test_round_trip(recipe):
    payload = json.loads(json.dumps(recipe.to_dict()))
    assert QuantRecipe.from_dict(payload) == recipe
    assert payload["keep_float"] == list(recipe.keep_float)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "int4"}, "mode"),
        ({"input_type": "int16"}, "input_type"),
        ({"mode": "float16", "input_type": "int8"}, "need mode 'int8'"),
        ({"mode": "dynamic", "keep_float": ("x",)}, "keep_float"),
        ({"samples": 0}, "samples"),
    ],
)
def test_bad_recipes(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        QuantRecipe(**kwargs)


def test_unknown_key():
    with pytest.raises(ConfigError, match="unknown recipe key"):
        QuantRecipe.from_dict({"mode": "int8", "bits": 4})

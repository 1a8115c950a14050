"""Pipeline config: the whole file is validated before any work; errors name key, file and line."""

from __future__ import annotations

import pytest

from edgesep.cli.main import main
from edgesep.errors import ConfigError
from edgesep.pipeline.cache import StepCache, step_key
from edgesep.pipeline.config import DEFAULT_CONFIG, load_config


def write(tmp_path, text):
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


def test_full_config_round_trip(tmp_path):
    path = write(
        tmp_path,
        """
output = "out"
devices = ["local", "ssh://pi@raspberrypi.local"]

[model]
factory = "nets.py:make"
input_shape = [1, 3, 32, 32]

[calibration]
source = "images"
samples = 64
[calibration.preprocessing]
resize = [32, 32]
resize_mode = "shorter_side"
center_crop = [32, 32]
mean = [0.485, 0.456, 0.406]
std = [0.229, 0.224, 0.225]

[quantize]
modes = ["int8", "float16"]
input_type = "uint8"

[validate]
data = "digits"
runs = 20
fail_if_drop = 0.5
""",
    )
    config = load_config(path)
    assert config.model.input_shape == (1, 3, 32, 32)
    assert config.calibration.preprocessing.mean == (0.485, 0.456, 0.406)
    assert config.calibration.preprocessing.resize_mode == "shorter_side"  # every key of PreprocessingSpec
    recipe = config.quantize.recipe("int8", config.calibration)
    assert recipe.preprocessing is config.calibration.preprocessing and recipe.input_type == "uint8"
    assert config.quantize.recipe("float16", config.calibration).input_type == "float32"
    assert config.quantize.modes == ("int8", "float16")
    assert config.validate.fail_if_drop == 0.5
    assert config.devices == ("local", "ssh://pi@raspberrypi.local")
    assert config.resolve(config.output) == tmp_path.resolve() / "out"
    assert config.resolve("/abs/x").as_posix() == "/abs/x"


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ('[model]\nfactory = "x.py:f"\nweigths = "w.pt"\n', r"pipeline.toml:3: unknown key 'model.weigths'; expected one of: "),
        ('[quantize]\n\nper_channel = "yes"\n', r"pipeline.toml:3: quantize.per_channel = 'yes' has the wrong type; expected true/false"),
        ("[validate]\nruns = 2.5\n", r"pipeline.toml:2: validate.runs = 2.5 has the wrong type; expected an integer"),
        ('[model]\ninput_shape = [1, "a"]\n', r"model.input_shape .* expected a list of an integer or absent"),
        ('[quantize]\nmodes = ["int4"]\n', r"pipeline.toml:1: \[quantize\]: recipe mode must be one of float16, dynamic, int8, got 'int4'"),
        ('\n[quantize]\ninput_type = "int16"\n', r"pipeline.toml:2: \[quantize\]: recipe input_type must be one of int8, uint8, float32"),
        (
            '[calibration]\n[calibration.preprocessing]\nresize_mode = "crop"\n',
            r"pipeline.toml:2: \[calibration.preprocessing\]: preprocessing resize_mode must be one of",
        ),
        ("[calibration]\nsamples = 0\n", r"pipeline.toml:1: \[calibration\]: recipe samples must be positive"),
        ("[validate]\nthreads = 0\n", r"pipeline.toml:1: \[validate\]: threads must be >= 1, got 0"),
        ("[prune]\nratio = 1.5\n", r"pipeline.toml:1: \[prune\]: "),
        ('devices = "local"\n', r"pipeline.toml:1: devices = 'local' has the wrong type; expected a list of a string"),
        ("[model\n", r"not valid TOML"),
        ("colour = 1\n", r"unknown key 'colour'"),
        (
            '[model]\nonnx = "m.onnx"\n[quantize]\nqat_epochs = 2\n',
            r"pipeline.toml:4: quantize.qat_epochs: .*give model.factory, not model.onnx",
        ),
        ("[quantize]\nqat_epochs = -1\n", r"\[quantize\]: recipe qat_epochs must be a whole number >= 0"),
    ],
)
def test_bad_configs_name_key_file_and_line(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(write(tmp_path, text))


def test_cli_bad_config_exits_2_with_one_line(tmp_path, capsys):
    path = write(tmp_path, "[validate]\nrunz = 3\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown key 'validate.runz'" in err[0] and ":2:" in err[0]
    assert not (tmp_path / "edgesep-out").exists()


def test_default_config_is_the_digits_pipeline():
    assert DEFAULT_CONFIG.model.factory == "default"
    assert DEFAULT_CONFIG.quantize.modes == ("float16", "dynamic", "int8")
    assert DEFAULT_CONFIG.devices == ("local",)


def test_step_cache_keys_follow_contents(tmp_path):
    source = tmp_path / "a.bin"
    source.write_bytes(b"one")
    artifact = tmp_path / "out.bin"
    artifact.write_bytes(b"x")
    key = step_key({"mode": "int8"}, [source])
    cache = StepCache.open(tmp_path)
    cache.record("quantize-int8", key, [artifact], result={"size": 1})
    reopened = StepCache.open(tmp_path)
    assert reopened.is_fresh("quantize-int8", key, [artifact])
    assert reopened.result("quantize-int8") == {"size": 1}
    assert step_key({"mode": "int8"}, [source]) == key
    assert step_key({"mode": "float16"}, [source]) != key
    source.write_bytes(b"two")
    assert step_key({"mode": "int8"}, [source]) != key
    artifact.unlink()
    assert not reopened.is_fresh("quantize-int8", key, [artifact])


@pytest.mark.parametrize(
    "extra,message",
    [
        ('devices = ["local", "nosuch"]\n', "devices: unknown device 'nosuch'"),
        ('devices = ["local"]\n[validate]\ndata = "missing.npz"\n', "validate.data:"),
        ('devices = ["local"]\n[calibration]\nsource = "missing_images"\n', "calibration.source:"),
    ],
)
def test_everything_a_pipeline_names_is_checked_before_the_first_step(tmp_path, capsys, extra, message):
    """#14: a bad device or data path in the last section must not cost an export, a conversion and a
    quantization first."""

    config = tmp_path / "p.toml"
    config.write_text('output = "out"\n' + extra.replace("[validate]", '[model]\nfactory = "default"\n[validate]', 1))
    assert main(["-q", "run", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_int8_remedies_reach_the_int8_recipe_only(tmp_path):
    config = load_config(write(tmp_path, '[model]\nonnx = "m.onnx"\n[quantize]\nequalize_activations = true\nactivation_range = "mse"\n'))
    int8 = config.quantize.recipe("int8", config.calibration)
    assert int8.equalize_activations is True and int8.activation_range == "mse"
    assert config.quantize.recipe("float16", config.calibration).equalize_activations is False

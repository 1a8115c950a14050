"""Bad inputs for every command (#9): exit code 2, one clear error line, no partial output, nothing executed.

Each case builds its bad input in a temp folder, runs the real CLI through ``main([...])``
and checks the exit code, that stderr is exactly one ``edgesep: error:`` line, and that
the output path it named was not created.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from edgesep.cli.main import main

TESTS = Path(__file__).resolve().parent
TINY = f"{TESTS / 'export' / 'models_for_tests.py'}:tiny"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A real exported .onnx and converted .tflite of a tiny separable net (3x16x16 input)."""
    folder = tmp_path_factory.mktemp("good")
    onnx_path, tflite_path = folder / "m.onnx", folder / "m.tflite"
    assert main(["-q", "export", TINY, "-o", str(onnx_path)]) == 0
    assert main(["-q", "convert", str(onnx_path), "-o", str(tflite_path)]) == 0
    return onnx_path, tflite_path


def expect_clean_failure(capsys, argv: list[str], *, outputs: list[Path], pattern: str, code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("edgesep: error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in "\n".join(err)
    assert pattern.lower() in errors[0].lower(), errors[0]
    for path in outputs:
        assert not path.exists(), f"partial output left behind: {path}"
        assert not list(path.parent.glob(f".{path.name}.*")), "temp file left behind"
    return errors[0]


def _truncated(models, tmp_path):
    data = models[0].read_bytes()
    path = tmp_path / "truncated.onnx"
    path.write_bytes(data[: len(data) // 2])
    return path


def _random_onnx(models, tmp_path):
    path = tmp_path / "random.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _external_data_escape(models, tmp_path):
    """An initializer whose external data points outside the model's folder."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(8, np.float32).tobytes())
    inner = tmp_path / "model_dir"
    inner.mkdir()
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "32")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "escape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8])],
        initializer=[weight],
    )
    path = inner / "escape.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


@pytest.mark.parametrize(
    ("make", "pattern"),
    [(_truncated, ""), (_random_onnx, ""), (_external_data_escape, "")],
    ids=["truncated", "random-bytes", "external-data-outside-folder"],
)
def test_convert_rejects_bad_onnx(models, tmp_path, capsys, make, pattern):
    source = make(models, tmp_path)
    out = tmp_path / "out.tflite"
    expect_clean_failure(capsys, ["convert", str(source), "-o", str(out)], outputs=[out], pattern=pattern)


def test_inspect_and_quantize_reject_bad_onnx(models, tmp_path, capsys):
    source = _truncated(models, tmp_path)
    expect_clean_failure(capsys, ["inspect", str(source)], outputs=[], pattern="")
    out = tmp_path / "q.tflite"
    expect_clean_failure(capsys, ["quantize", str(source), "--calib", "digits", "-o", str(out)], outputs=[out], pattern="")


def test_random_bytes_as_tflite(tmp_path, capsys):
    fake = tmp_path / "fake.tflite"
    fake.write_bytes(np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    expect_clean_failure(capsys, ["bench", str(fake), "--runs", "2"], outputs=[], pattern="")
    out = tmp_path / "vout"
    expect_clean_failure(
        capsys,
        ["validate", "--float", str(fake), "--quant", str(fake), "--data", "digits", "--output-dir", str(out)],
        outputs=[out / "report.md"],
        pattern="",
    )


def test_checkpoint_needing_arbitrary_pickle_is_refused(tmp_path, capsys):
    from edgesep.models.loading import load_factory

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": load_factory(TINY).state_dict(), "payload": Path("anything")}, evil)
    out = tmp_path / "m.onnx"
    expect_clean_failure(capsys, ["export", TINY, "--weights", str(evil), "-o", str(out)], outputs=[out], pattern="weights_only=True")


@pytest.mark.parametrize(
    ("array", "pattern"),
    [
        (np.full((20, 3, 16, 16), np.nan, np.float32), "nan"),
        (np.where(np.arange(20 * 3 * 16 * 16).reshape(20, 3, 16, 16) == 5, np.inf, 0.5).astype(np.float32), "inf"),
        (np.zeros((20, 1, 16, 16), np.float32), "expect"),
        (np.zeros((20, 3, 8, 8), np.float32), "expect"),
        (np.array([["a"] * 4] * 4), "dtype"),
    ],
    ids=["nan", "inf", "wrong-channels", "wrong-size", "strings"],
)
def test_quantize_rejects_bad_calibration_arrays(models, tmp_path, capsys, array, pattern):
    calib = tmp_path / "calib.npy"
    np.save(calib, array)
    out = tmp_path / "q.tflite"
    expect_clean_failure(capsys, ["quantize", str(models[0]), "--calib", str(calib), "-o", str(out)], outputs=[out], pattern=pattern)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG that claims a huge size (a decompression bomb) with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("content", ["empty", "huge-and-corrupt"])
def test_quantize_rejects_unusable_image_folders(models, tmp_path, capsys, content):
    folder = tmp_path / "images"
    folder.mkdir()
    if content == "huge-and-corrupt":
        _png_header_only(folder / "bomb.png", 60000, 60000)
        (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "q.tflite"
    expect_clean_failure(capsys, ["quantize", str(models[0]), "--calib", str(folder), "-o", str(out)], outputs=[out], pattern="")


def test_config_with_wrong_types(tmp_path, capsys):
    config = tmp_path / "p.toml"
    config.write_text('[quantize]\nmodes = "int8"\n')
    expect_clean_failure(capsys, ["run", str(config)], outputs=[tmp_path / "edgesep-out"], pattern="p.toml:2")


@pytest.mark.parametrize(
    "device",
    [
        "ssh://pi@host;touch {marker}",
        "ssh://pi@$(touch {marker})",
        "ssh://`touch {marker}`@host",
        "adb://serial;touch {marker}",
        "ssh://-oProxyCommand=touch {marker}@host",
    ],
)
def test_device_strings_with_shell_metacharacters_execute_nothing(models, tmp_path, capsys, device):
    marker = tmp_path / "pwned"
    expect_clean_failure(
        capsys, ["bench", str(models[1]), "--runs", "1", "--device", device.format(marker=marker)], outputs=[marker], pattern=""
    )


def test_paths_with_spaces_and_quotes_work(models, tmp_path, capsys):
    folder = tmp_path / "my \"odd\" folder; with 'quotes'"
    folder.mkdir()
    onnx_path = folder / "model $(x).onnx"
    tflite_path = folder / "model `y`.tflite"
    assert main(["-q", "export", TINY, "-o", str(onnx_path)]) == 0
    assert main(["-q", "convert", str(onnx_path), "-o", str(tflite_path)]) == 0
    assert main(["-q", "bench", str(tflite_path), "--runs", "2", "--json"]) == 0
    assert onnx_path.is_file() and tflite_path.is_file()


def test_data_files_that_are_not_what_they_claim(tmp_path, capsys):
    """#14 class 4: pickled object arrays in a .npz, a --weights file that is no checkpoint, a checkpoint of
    another model, and an input shape too large to allocate: one line each, nothing written."""
    import torch

    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}] * 4, dtype=object))
    (tmp_path / "garbage.pt").write_bytes(b"hello world, not a checkpoint")
    torch.save({"not": torch.zeros(1)}, tmp_path / "other.pt")
    onnx_path = tmp_path / "m.onnx"
    assert main(["-q", "export", "default", "-o", str(onnx_path)]) == 0
    capsys.readouterr()
    expect_clean_failure(capsys, ["quantize", str(onnx_path), "--calib", str(tmp_path / "obj.npz"), "-o", str(tmp_path / "q.tflite")],
                         outputs=[tmp_path / "q.tflite"], pattern="holds pickled Python objects")  # fmt: skip
    expect_clean_failure(capsys, ["export", "default", "-o", str(tmp_path / "e.onnx"), "--weights", str(tmp_path / "garbage.pt")],
                         outputs=[tmp_path / "e.onnx"], pattern="is not a PyTorch checkpoint")  # fmt: skip
    line = expect_clean_failure(capsys, ["export", "default", "-o", str(tmp_path / "f.onnx"), "--weights", str(tmp_path / "other.pt")],
                                outputs=[tmp_path / "f.onnx"], pattern="missing key(s)")  # fmt: skip
    assert len(line) < 300
    import onnx

    model = onnx.load(onnx_path)
    for dim in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.Clear()
        dim.dim_param = "side"
    onnx.save(model, tmp_path / "dyn.onnx")
    expect_clean_failure(capsys, ["convert", str(tmp_path / "dyn.onnx"), "-o", str(tmp_path / "h.tflite"),
                                  "--input-shape", "1,1,100000,100000"],
                         outputs=[tmp_path / "h.tflite"], pattern="would need 37.3 GiB")  # fmt: skip

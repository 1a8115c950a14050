"""Operating-system faults on outputs (#14): a read-only filesystem, a full disk (also between a model and its
sidecar), a folder in the way, the input as the output. Each is exit 2 with one `edgesep: error:` line naming
the path, and no new or partial file. The filesystems are real: small tmpfs mounts (skipped where this
process may not mount)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from convert_helpers import conv_relu_model

from edgesep.cli.main import main


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    import onnx

    path = tmp_path_factory.mktemp("faults") / "m.onnx"
    onnx.save(conv_relu_model(), path)
    return path


@pytest.fixture
def tmpfs(tmp_path):
    """mount(size) -> a fresh tmpfs of that size under tmp_path (unmounted afterwards)."""
    mounted: list[Path] = []

    def mount(size: str, *, options: str = "") -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(point)],
                              capture_output=True, check=False)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def _one_error_line(capsys, argv, pattern: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("edgesep: error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    assert pattern in errors[0], errors[0]
    return errors[0]


def _fill(folder: Path, *, leave: int) -> None:
    """Fill the filesystem of ``folder`` until about ``leave`` bytes are free."""
    import os

    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    (folder / "ballast").write_bytes(b"\0" * max(0, free - leave))


def test_read_only_filesystem(onnx_file, tmpfs, capsys):
    folder = tmpfs("1m", options=",mode=0755")
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    line = _one_error_line(capsys, ["convert", str(onnx_file), "-o", str(folder / "m.tflite")], "Read-only file system")
    assert str(folder / "m.tflite") in line
    _one_error_line(capsys, ["convert", str(onnx_file), "-o", str(folder / "new" / "m.tflite")], "Read-only file system")


def test_full_disk_leaves_nothing(onnx_file, tmpfs, capsys):
    folder = tmpfs("256k")
    _fill(folder, leave=0)
    target = folder / "m.tflite"
    _one_error_line(capsys, ["convert", str(onnx_file), "-o", str(target)], "No space left on device")
    assert sorted(p.name for p in folder.iterdir()) == ["ballast"]


def test_disk_full_between_model_and_sidecar_publishes_neither(onnx_file, tmp_path, tmpfs, capsys):
    assert main(["convert", str(onnx_file), "-o", str(tmp_path / "ref.tflite")]) == 0
    size = (tmp_path / "ref.tflite").stat().st_size
    folder = tmpfs("256k")
    _fill(folder, leave=-(-size // 4096) * 4096)  # room for the model's pages, not for its sidecar
    _one_error_line(capsys, ["convert", str(onnx_file), "-o", str(folder / "m.tflite")], "No space left on device")
    assert sorted(p.name for p in folder.iterdir()) == ["ballast"]


def test_output_that_is_the_input_is_refused_even_with_force(onnx_file, tmp_path, capsys):
    before = onnx_file.read_bytes()
    _one_error_line(capsys, ["convert", str(onnx_file), "-o", str(onnx_file), "--force"], "is the input")
    link = tmp_path / "link.tflite"
    link.symlink_to(onnx_file)
    _one_error_line(capsys, ["convert", str(onnx_file), "-o", str(link), "--force"], "is the input")
    assert onnx_file.read_bytes() == before


def test_a_folder_in_the_way_is_refused_even_with_force(onnx_file, tmp_path, capsys):
    (tmp_path / "m.tflite").mkdir()
    _one_error_line(capsys, ["convert", str(onnx_file), "-o", str(tmp_path / "m.tflite"), "--force"], "it is a folder")
    assert (tmp_path / "m.tflite").is_dir()

"""Validation on several devices: per-device figures plus cross-device output agreement."""

from __future__ import annotations

import json

import pytest

from edgesep.cli.main import main
from edgesep.devices.base import RunSpec
from edgesep.devices.local import LocalDevice
from edgesep.errors import OutputExistsError
from edgesep.validate.multi import device_slug, validate_on_devices
from edgesep.validate.table import multi_device_rows

SPEC = RunSpec(runs=3, warmup=1, threads=1)


def test_device_slug():
    assert device_slug("ssh://pi@host:22") == "ssh-pi-host-22"
    assert device_slug("rpi4") == "rpi4"


def test_two_local_devices_agree_exactly(digits_models, tmp_path):
    float_path, quant_path, _ = digits_models
    devices = [LocalDevice(), LocalDevice(name="local-again")]
    result = validate_on_devices(float_path, quant_path, data="digits", devices=devices, spec=SPEC, samples=30,
                                 output_dir=tmp_path)  # fmt: skip
    assert [r.device for r in result.reports] == ["local", "local-again"]
    first, second = result.reports
    assert first.comparison.candidate.top1 == second.comparison.candidate.top1  # same inputs, same runtime
    (cross,) = result.cross_device
    assert cross.reference == "local" and cross.device == "local-again"
    assert cross.float_fidelity.max_abs == 0.0 and cross.quant_fidelity.max_abs == 0.0
    assert (tmp_path / "local" / "report.md").is_file() and (tmp_path / "local-again" / "quant.results.json").is_file()
    rows = multi_device_rows(result)
    assert [row[:2] for row in rows] == [["local", "float"], ["local", "quant"], ["local-again", "float"], ["local-again", "quant"]]
    assert rows[0][-2:] == ["ref", "ref"] and rows[3][-2:] == ["100.00%", "0"]
    payload = json.loads(json.dumps(result.to_dict(), default=str))
    assert payload["cross_device"][0]["quant"]["max_abs"] == 0.0
    # the side-by-side report
    assert [p.name for p in result.report_files] == ["report.md", "report.html", "accuracy_vs_latency.png"]
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.count("| local-again | quant |") == 1 and "[local-again](local-again/report.md)" in markdown
    assert f"{100 * second.comparison.candidate.top1:.2f}%" in markdown
    assert (tmp_path / "report.html").read_text().count("data:image/png;base64,") == 1
    with pytest.raises(OutputExistsError, match="report exists"):
        validate_on_devices(float_path, quant_path, data="digits", devices=devices, output_dir=tmp_path)


def test_repeated_device_names_are_refused(digits_models, capsys):
    float_path, quant_path, _ = digits_models
    code = main(["validate", "--float", str(float_path), "--quant", str(quant_path), "--data", "digits",
                 "--device", "local", "--device", "local"])  # fmt: skip
    assert code == 2
    assert "devices must be distinct" in capsys.readouterr().err


def _emulated_pi():
    from edgesep.devices import emulated

    root = emulated.default_rootfs_dir()
    if not emulated.qemu_available():
        pytest.skip(f"{emulated.QEMU} is not installed")
    if not emulated.is_ready(root):
        pytest.skip(f"no arm64 rootfs at {root} (the device tests build it)")
    return LocalDevice(name="pi-emulated", python=tuple(emulated.python_command(root)), emulated=True)


def test_emulated_arm64_pi_next_to_x86(digits_models):
    """arm64 kernels under qemu: float within float32 noise of x86, accuracy reported next to x86's."""
    float_path, quant_path, _ = digits_models
    result = validate_on_devices(float_path, quant_path, data="digits", devices=[LocalDevice(), _emulated_pi()],
                                 spec=SPEC, samples=40)  # fmt: skip
    x86, arm = result.reports
    assert arm.comparison.emulated and not x86.comparison.emulated
    assert arm.comparison.device["machine"] == "aarch64"
    (cross,) = result.cross_device
    assert cross.float_fidelity.max_abs < 1e-4 and cross.float_fidelity.top1_agreement == 1.0
    # int8 kernels may differ between architectures by a quantization step at most
    assert cross.quant_fidelity.top1_agreement >= 0.95
    assert abs(arm.comparison.candidate.top1 - x86.comparison.candidate.top1) <= 2 / 40
    assert "(emulated)" in multi_device_rows(result)[2][0]
    from edgesep.validate.report import render_multi_markdown

    assert "pi-emulated: EMULATED latency" in render_multi_markdown(result)

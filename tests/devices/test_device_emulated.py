"""The emulated Raspberry Pi: the real arm64 Python + ai-edge-litert under qemu-aarch64-static, over the real sshd."""

from __future__ import annotations

import dataclasses

import numpy as np
from device_models import reference_outputs

from edgesep.devices.base import RunSpec
from edgesep.devices.emulated import python_command


def test_emulated_pi_over_ssh_agrees_with_x86(arm64_rootfs, ssh_device, tiny_models, tiny_inputs, tmp_path):
    device = dataclasses.replace(ssh_device, python=tuple(python_command(arm64_rootfs)), emulated=True, name="pi-emulated")
    results = device.run(tiny_models, tiny_inputs, tmp_path / "arm64", spec=RunSpec(runs=6, warmup=1, threads=1))
    for result in results.values():
        assert result.emulated and result.complete
        assert result.device["machine"] == "aarch64" and "emulating aarch64" in result.device["cpu"]
        assert result.device["runtime"] == {"name": "ai_edge_litert", "version": "1.4.0"}
    x86_float = reference_outputs(tiny_models["float"], tiny_inputs)
    float_diff = float(np.max(np.abs(results["float"].outputs - x86_float)))
    assert float_diff <= 1e-5
    x86_int8 = reference_outputs(tiny_models["int8"], tiny_inputs)
    int8_diff = float(np.max(np.abs(results["int8"].outputs - x86_int8)))
    print(f"arm64 vs x86: float max-abs {float_diff:.2e}, int8 max-abs {int8_diff:.2e}")
    # int8 kernels may round differently between architectures; allow one output quantization step
    scale = float(np.max(np.abs(x86_int8))) / 127
    assert int8_diff <= scale + 1e-6
    assert float(np.mean(results["int8"].outputs.argmax(1) == x86_int8.argmax(1))) == 1.0


def test_emulated_profiles_use_the_qemu_line(arm64_rootfs):
    from edgesep.devices import open_device

    local = open_device("pi-emulated-local", overrides={"rootfs": str(arm64_rootfs)})
    assert local.emulated and local.python[-1] == str(arm64_rootfs / "usr" / "bin" / "python3.11")
    assert "qemu-aarch64-static" in local.python and "EDGESEP_EMULATED=1" in local.python
    over_ssh = open_device("pi-emulated", overrides={"rootfs": str(arm64_rootfs), "port": 2222})
    assert over_ssh.emulated and over_ssh.host == "127.0.0.1" and over_ssh.python == local.python

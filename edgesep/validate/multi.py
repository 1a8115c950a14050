"""Validate on several devices with the same inputs and compare the devices' outputs with each other.

The first device is the reference: each other device's float and quantized
outputs are compared with the reference's (int8 kernels differ between
architectures, and that is what a user's Pi would show).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesep.errors import InputError
from edgesep.numerics import Fidelity
from edgesep.validate.comparison import first_output, output_fidelity
from edgesep.validate.report import write_multi_report
from edgesep.validate.step import FLOAT_TAG, QUANT_TAG, ValidationReport, refuse_existing_report, validate
from edgesep.validate.table import device_slug


@dataclass(frozen=True)
class CrossDevice:
    """One device's outputs vs the reference device's, for the float and the quantized model."""

    device: str
    reference: str
    float_fidelity: Fidelity | None
    quant_fidelity: Fidelity | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "reference": self.reference,
            "float": None if self.float_fidelity is None else self.float_fidelity.to_dict(),
            "quant": None if self.quant_fidelity is None else self.quant_fidelity.to_dict(),
        }


@dataclass(frozen=True)
class MultiDeviceReport:
    reports: tuple[ValidationReport, ...]
    cross_device: tuple[CrossDevice, ...]
    report_files: tuple[Path, ...] = ()  # the side-by-side report in output_dir

    def to_dict(self) -> dict[str, Any]:
        return {
            "devices": [report.to_dict() for report in self.reports],
            "cross_device": [entry.to_dict() for entry in self.cross_device],
            "report_files": [str(p) for p in self.report_files],
        }


def _device_name(device) -> str:
    return device if isinstance(device, str) else getattr(device, "name", type(device).__name__)


def validate_on_devices(
    float_model: str | Path,
    quant_model: str | Path,
    *,
    data: str | Path,
    devices: Sequence,
    output_dir: str | Path | None = None,
    **options: Any,
) -> MultiDeviceReport:
    """:func:`validate` on each device (results in ``output_dir/<device>/``), plus cross-device output agreement.

    ``options`` are passed on to :func:`validate` (labels, spec, samples, report, force, on_stage).  With
    ``output_dir`` and ``report`` (default) a side-by-side report goes to ``output_dir/report.md``/``.html``.
    """

    if not devices:
        raise InputError("give at least one device")
    slugs = [device_slug(_device_name(device)) for device in devices]
    if len(set(slugs)) != len(slugs):
        raise InputError(f"devices must be distinct, got {', '.join(_device_name(d) for d in devices)}")
    if output_dir is not None and options.get("report", True) and not options.get("force", False):
        refuse_existing_report(Path(output_dir))  # before any device time is spent
    reports, outputs = [], []
    for device, slug in zip(devices, slugs):
        folder = None if output_dir is None else Path(output_dir) / slug
        report, runs = _validate_keeping_outputs(float_model, quant_model, data=data, device=device, output_dir=folder, **options)
        reports.append(report)
        outputs.append(runs)
    cross = tuple(
        CrossDevice(
            device=report.device,
            reference=reports[0].device,
            float_fidelity=output_fidelity(outputs[0][FLOAT_TAG], runs[FLOAT_TAG]),
            quant_fidelity=output_fidelity(outputs[0][QUANT_TAG], runs[QUANT_TAG]),
        )
        for report, runs in zip(reports[1:], outputs[1:])
    )
    result = MultiDeviceReport(reports=tuple(reports), cross_device=cross)
    if output_dir is not None and options.get("report", True):
        files = write_multi_report(result, Path(output_dir), force=options.get("force", False))
        result = MultiDeviceReport(reports=result.reports, cross_device=cross, report_files=files)
    return result


def _validate_keeping_outputs(float_model, quant_model, *, data, device, output_dir, **options):
    report = validate(float_model, quant_model, data=data, device=device, output_dir=output_dir, **options)
    return report, {tag: first_output(run.outputs) for tag, run in report.results.items()}

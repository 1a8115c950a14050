"""``edgesep quantize``: post-training int8 (calibrated), float16 or dynamic-range quantization."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import typer

from edgesep.cli.app import app, echo, progress_enabled
from edgesep.cli.parsing import parse_fractions, parse_shape
from edgesep.cli.quantize_sweep import run_search, run_sweep
from edgesep.errors import InputError
from edgesep.quantize import quantize
from edgesep.quantize.calibration import CalibrationWarning
from edgesep.quantize.preprocessing import PreprocessingSpec
from edgesep.quantize.recipe import QuantRecipe

WORST_SHOWN = 10


@app.command("quantize")
def quantize_command(
    model: Path = typer.Argument(..., help="The .onnx model, or a .tflite made by `edgesep convert`."),
    output: Path = typer.Option(
        None, "-o", "--output", help="The quantized .tflite file to write (with --sweep: the chosen one, optional)."
    ),
    calib: str = typer.Option(None, "--calib", help="Calibration data: a folder of images, a .npy/.npz file or 'digits'."),
    mode: str = typer.Option(None, "--mode", help="int8 (default), float16 or dynamic."),
    input_type: str = typer.Option(None, "--input-type", help="int8 model input type: float32 (default), int8, uint8."),
    output_type: str = typer.Option(None, "--output-type", help="int8 model output type: float32 (default), int8, uint8."),
    per_tensor: bool = typer.Option(False, "--per-tensor", help="Per-tensor instead of per-channel weight scales."),
    samples: int = typer.Option(None, "--samples", help="Calibration samples (default 300)."),
    seed: int = typer.Option(None, "--seed", help="Seed of the calibration sampling (default 0)."),
    activation_range: str = typer.Option(
        None, "--activation-range", help="How activation ranges come from the data: minmax (default), percentile, mse, entropy."
    ),
    equalize: bool = typer.Option(False, "--equalize", help="Fold BN and equalize weight ranges (needs --torch-model)."),
    equalize_activations: bool = typer.Option(
        False,
        "--equalize-activations",
        help="Scale activation channels between conv pairs (through HardSwish/ReLU) to fit int8 (ONNX graph; no --torch-model).",
    ),
    qat_epochs: int = typer.Option(
        None, "--qat-epochs", help="Fine-tune N epochs with fake int8, distilled from the float model (needs --torch-model)."
    ),
    bias_correction: str = typer.Option(
        None,
        "--bias-correction",
        help="Cancel int8's per-channel mean shift: none (default), empirical (on the int8 model, or on --torch-model if given), "
        "analytic (needs --torch-model).",
    ),
    weight_rounding: str = typer.Option(
        None,
        "--weight-rounding",
        help="How int8 weights are rounded: nearest (default) or adaround (learned on the calibration data, on the int8 model; "
        "slower to make, same model speed).",
    ),
    torch_model: str = typer.Option(
        None, "--torch-model", help="The PyTorch model behind MODEL ('file.py:factory', 'pkg.mod:factory' or 'default')."
    ),
    torch_weights: Path = typer.Option(None, "--torch-weights", help="A checkpoint to load into --torch-model."),
    analyze: bool = typer.Option(False, "--analyze", help="Per-layer quantization error, worst first."),
    keep_float: list[str] = typer.Option(None, "--keep-float", help="A layer to keep in float (repeatable)."),
    float_ends: str = typer.Option(
        None,
        "--float-ends",
        help="HEAD,TAIL: keep in float these fractions of the ops at the input and output ends, e.g. 0.1,0 "
        "(a stem with very different channel ranges costs little time in float).",
    ),
    auto_fallback: int = typer.Option(
        0, "--auto-fallback", help="Keep in float up to N layers whose int8 harms the output most (by --metric; stops when none gains)."
    ),
    metric: str = typer.Option(
        "cosine",
        "--metric",
        help="The output metric --auto-fallback ranks layers by: cosine, top1, iou@T / piou@T (maps: mean / pooled), boxes@T, "
        "ctc (CTC strings), layout@T (PicoDet boxes), face@T (MTCNN ONet).",
    ),
    preprocessing: Path = typer.Option(None, "--preprocessing", help="JSON PreprocessingSpec for an image folder."),
    recipe_file: Path = typer.Option(None, "--recipe", help="JSON QuantRecipe to start from (options override it)."),
    holdout: int = typer.Option(100, "--holdout", help="Samples held out of calibration to measure agreement."),
    input_shape: str = typer.Option(None, "--input-shape", help="N,C,H,W for models with dynamic inputs."),
    sweep: bool = typer.Option(
        False, "--sweep", help="Try the candidate recipes, print agreement/accuracy/latency per recipe, pick the best."
    ),
    latency_budget_ms: float = typer.Option(
        None, "--latency-budget-ms", help="With --sweep: only recipes whose int8 p50 latency fits (ms)."
    ),
    target: float = typer.Option(
        None,
        "--target",
        help="Search int8 recipes, cheapest first, until --metric on the held-out samples reaches this; exit 1 if none does.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output."),
) -> None:
    """Quantize a model with calibration data; prints size, int8-vs-float agreement and the worst layers."""

    if torch_weights is not None and torch_model is None:
        raise InputError("--torch-weights needs --torch-model (the factory to load them into)")
    recipe = _load_recipe(recipe_file) if recipe_file else QuantRecipe()
    changes = {
        "mode": mode,
        "input_type": input_type,
        "output_type": output_type,
        "samples": samples,
        "seed": seed,
        "per_channel": False if per_tensor else None,
        "activation_range": activation_range,
        "equalize": True if equalize else None,
        "equalize_activations": True if equalize_activations else None,
        "qat_epochs": qat_epochs,
        "bias_correction": bias_correction,
        "weight_rounding": weight_rounding,
        "keep_float": tuple(keep_float) if keep_float else None,
        "float_ends": parse_fractions(float_ends, option="--float-ends") if float_ends else None,
        "preprocessing": _load_preprocessing(preprocessing) if preprocessing else None,
    }
    recipe = QuantRecipe.from_dict({**recipe.to_dict(), **{k: v for k, v in changes.items() if v is not None}})
    if sweep:
        run_sweep(
            model,
            output,
            recipe=recipe,
            torch_model=torch_model,
            torch_weights=torch_weights,
            calib=calib,
            latency_budget_ms=latency_budget_ms,
            holdout=holdout,
            as_json=as_json,
            force=force,
        )
        return
    if latency_budget_ms is not None:
        raise InputError("--latency-budget-ms applies to --sweep only")
    if output is None:
        raise InputError("give the output file with -o/--output (optional only with --sweep)")
    if target is not None:
        if recipe.mode != "int8" or auto_fallback or recipe.keep_float or any(recipe.float_ends):
            raise InputError("--target searches int8 recipes itself: drop --mode, --auto-fallback, --keep-float and --float-ends")
        run_search(model, output, recipe=recipe, calib=calib, metric=metric, target=target, holdout=holdout,
                   input_shape=parse_shape(input_shape), as_json=as_json, force=force)  # fmt: skip
        return
    echo(f"quantizing {model} ({recipe.mode}) ...")
    with warnings.catch_warnings():
        warnings.simplefilter("always", CalibrationWarning)
        warnings.showwarning = _show_warning
        result = quantize(
            model,
            output,
            recipe=recipe,
            model=torch_model,
            weights=torch_weights,
            calibration=calib,
            input_shape=parse_shape(input_shape),
            analyze=analyze,
            auto_fallback=auto_fallback,
            metric=metric,
            holdout=holdout,
            progress=progress_enabled() and not as_json,
            force=force,
        )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    _print_summary(result)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Calibration warnings as one line on stderr (not Python's file:line format)."""
    if issubclass(category, CalibrationWarning):
        typer.echo(f"edgesep: warning: {message}", err=True)


def _load_recipe(path: Path):
    payload = _read_json(path, what="recipe")
    return QuantRecipe.from_dict(payload.get("recipe", payload) if "mode" not in payload else payload)


def _load_preprocessing(path: Path):
    return PreprocessingSpec.from_dict(_read_json(path, what="preprocessing spec")).to_dict()


def _read_json(path: Path, *, what: str) -> dict:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the {what} {path}: {error}") from None
    if not isinstance(payload, dict):
        raise InputError(f"the {what} {path} must be a JSON object")
    return payload


def _print_summary(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    fid = result.fidelity
    where = "held-out" if result.held_out else "calibration"
    agreement = "n/a" if fid.top1_agreement is None else f"{fid.top1_agreement:.2%}"
    console.print(
        f"{result.recipe.mode} {result.path}: {result.size_bytes / 1e3:.1f} kB "
        f"(float32 {result.float_size_bytes / 1e3:.1f} kB, {result.size_ratio:.1%}); "
        f"vs float on {result.eval_samples} {where} samples: top-1 agreement {agreement}, cosine {fid.cosine:.5f}"
    )
    if result.kernel_dtypes:
        console.print("kernels: " + ", ".join(f"{op} {dtype}" for op, dtype in sorted(result.kernel_dtypes.items())))
    if result.prepared:
        console.print(_prepared_line(result.prepared))
    if result.calibration and result.calibration.get("skipped"):
        console.print(f"skipped {result.calibration['skipped']} unreadable calibration file(s)")
    if len(result.variants) > 2:
        _print_variants(console, Table, result.variants)
    if result.layers:
        table = Table(title=f"per-layer error, worst {min(WORST_SHOWN, len(result.layers))} of {len(result.layers)}")
        table.add_column("layer", overflow="fold")  # full names: they are what --keep-float takes
        for column in ("op", "RMSE / range", "SNR dB", "max abs"):
            table.add_column(column, justify="left" if column == "op" else "right", no_wrap=True)
        for layer in result.layers[:WORST_SHOWN]:
            kept = " (float)" if layer.name in result.recipe.keep_float else ""
            table.add_row(layer.name + kept, layer.op, f"{layer.relative_rmse:.4f}", f"{layer.snr_db:.1f}", f"{layer.max_abs:.3g}")
        console.print(table)
        console.print("keep a layer in float with --keep-float 'NAME' (quote it: names contain ';')")
    if result.sensitivity:
        table = Table(title=f"{result.metric} of the output with one layer kept in float (held-out samples)")
        table.add_column("layer", overflow="fold")
        for column in ("op", result.metric, "gain"):
            table.add_column(column, justify="left" if column == "op" else "right", no_wrap=True)
        for entry in result.sensitivity[:WORST_SHOWN]:
            kept = " (float)" if entry.name in result.recipe.keep_float else ""
            table.add_row(entry.name + kept, entry.op, f"{entry.metric:.4f}", f"{entry.gain:+.4f}")
        console.print(table)


def _prepared_line(prepared: dict) -> str:
    """What was done to the PyTorch model (equalization, bias correction, QAT) and to the int8 model (activation
    equalization on its ONNX graph, AdaRound, empirical bias correction), on one line."""
    torch_parts, int8_parts = [], []
    if prepared.get("activation_equalization"):
        equalized = prepared["activation_equalization"]
        int8_parts.append(f"equalized the activations of {len(equalized['pairs'])} conv pairs "
                          f"(float error {equalized['max_relative_error']:.1e})")  # fmt: skip
    if prepared.get("equalization"):
        torch_parts.append(f"equalized {len(prepared['equalization']['pairs'])} layer pairs")
    if prepared.get("weight_rounding"):
        rounding = prepared["weight_rounding"]
        layers = rounding["layers"]
        before, after = sum(layer["loss_nearest"] for layer in layers), sum(layer["loss_adaround"] for layer in layers)
        changed = sum(layer["channels_changed"] for layer in layers)
        int8_parts.append(f"AdaRound of {len(layers)} layers ({changed} channels rounded otherwise; summed layer MSE "
                          f"{before:.3g} -> {after:.3g}; {rounding['seconds']:.0f} s)")  # fmt: skip
    if prepared.get("bias_correction"):
        bias = prepared["bias_correction"]
        line = f"{bias['method']} bias correction of {len(bias['layers'])} layers (max shift {bias['max_shift']:.3g})"
        (int8_parts if bias.get("on") == "int8 tflite" else torch_parts).append(line)
    if prepared.get("qat"):
        qat = prepared["qat"]
        outcome = f"best epoch {qat['best_epoch']}" if qat["kept"] else "no epoch helped: weights unchanged"
        torch_parts.append(f"QAT {qat['epochs']} epochs on {qat['samples']} samples, distillation loss "
                           f"{qat['loss_before']:.3g} -> {qat['loss_after']:.3g} ({outcome})")  # fmt: skip
    lines = [f"PyTorch model: {'; '.join(torch_parts)}"] if torch_parts else []
    return "; ".join(lines + ([f"int8 model: {'; '.join(int8_parts)}"] if int8_parts else []))


def _print_variants(console, table_class, variants) -> None:
    table = table_class(title="trade-off (agreement vs float32 TFLite)")
    for column in ("model", "size kB", "top-1 agreement", "cosine", "latency ms"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for variant in variants:
        agreement = variant.fidelity.top1_agreement
        table.add_row(
            variant.name,
            f"{variant.size_bytes / 1e3:.1f}",
            "n/a" if agreement is None else f"{agreement:.2%}",
            f"{variant.fidelity.cosine:.5f}",
            f"{variant.latency_ms:.3f}",
        )
    console.print(table)

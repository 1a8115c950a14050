"""Quantization recipes for separable CNNs: float vs int8 accuracy, agreement and latency per recipe.

Usage:  python bench/quant_recipes.py [--models sepcnn,mobilenetv2] [--samples 300] [--runs 200]

Models (both trained on scikit-learn's digits, fixed split, so no download):
* ``sepcnn``: the built-in default (edgesep.models.default), 16x16 gray input.
* ``mobilenetv2``: ``edgesep.models.mobilenet:mobilenet_v2(width_mult=0.5, input_size=32, in_channels=1,
  num_classes=10)`` trained 15 epochs on the digits upsampled to 32x32 (seeded; cached as
  ``$EDGESEP_CACHE/models/bench-mbv2-digits32.pt``).  ReLU6 everywhere, linear bottlenecks, residuals.

Per recipe: the PyTorch half (BN folding, cross-layer equalization, bias correction) is applied, the model
is exported (edgesep.export), lowered (edgesep.convert) and calibrated once on ``--samples`` training
images; each activation-range method rewrites the calibrated ranges; the int8 model (per-channel or
per-tensor weights) is evaluated on the held-out test split.  Latency: ai-edge-litert with its default
XNNPACK delegate, 1 thread, median of ``--runs`` invocations.  Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_DIR = Path(__file__).resolve().parent.parent
if str(REPO_DIR) not in sys.path:  # `python bench/quant_recipes.py` from a clone without `pip install -e .`
    sys.path.insert(0, str(REPO_DIR))

MBV2_CHECKPOINT = "bench-mbv2-digits32.pt"
MBV2_EPOCHS = 15


@dataclass(frozen=True)
class Row:
    """One table row: the PyTorch half of the recipe and which range methods to try with it."""

    label: str
    per_channel: bool
    equalize: str | None  # None, or the ReLU6 policy: skip / clip / relu
    bias_correction: str
    ranges: tuple[str, ...] = ("minmax",)


ROWS = (
    Row("min/max per-channel (baseline)", True, None, "none", ("minmax", "percentile", "mse", "entropy")),
    Row("per-tensor naive", False, None, "none", ("minmax", "percentile", "mse", "entropy")),
    Row("per-tensor + CLE (ReLU6 kept)", False, "skip", "none"),
    Row("per-tensor + CLE (ReLU6 -> per-channel clip)", False, "clip", "none"),
    Row("per-tensor + CLE (ReLU6 -> ReLU, inexact)", False, "relu", "none"),
    Row("per-tensor + bias corr. (empirical)", False, None, "empirical"),
    Row("per-tensor + CLE + bias corr. (analytic)", False, "clip", "analytic"),
    Row("per-tensor + CLE + bias corr. (empirical)", False, "clip", "empirical", ("minmax", "percentile", "mse", "entropy")),
    Row("per-channel + CLE + bias corr. (empirical)", True, "clip", "empirical", ("minmax", "percentile", "mse", "entropy")),
)


def load_mobilenet_digits32():
    """The MobileNetV2-style digits classifier (trained once, then loaded from the cache)."""
    import torch

    from edgesep.cache import cache_dir
    from edgesep.data.digits import load_digits_split
    from edgesep.fileio import atomic_path
    from edgesep.models.mobilenet import mobilenet_v2
    from edgesep.models.training import TrainConfig, train_classifier

    path = cache_dir() / "models" / MBV2_CHECKPOINT
    torch.manual_seed(0)
    model = mobilenet_v2(width_mult=0.5, input_size=32, num_classes=10, in_channels=1)
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    started = time.perf_counter()
    result = train_classifier(
        model,
        load_digits_split(size=32),
        config=TrainConfig(epochs=MBV2_EPOCHS, batch_size=64, lr=0.01, seed=0),
        on_epoch=lambda epoch, loss: print(f"  epoch {epoch}: loss {loss:.4f}", file=sys.stderr, flush=True),
    )
    print(f"trained mobilenetv2 in {time.perf_counter() - started:.0f} s: test acc {result.test_accuracy:.4f}", file=sys.stderr)
    with atomic_path(path, force=True) as tmp:
        torch.save(model.state_dict(), tmp)
    return model.eval()


def load_model(name: str):
    """(model, digits split at the model's input size)."""
    from edgesep.data.digits import load_digits_split

    if name == "sepcnn":
        from edgesep.models.default import load_default_model

        return load_default_model(), load_digits_split(size=16)
    if name == "mobilenetv2":
        return load_mobilenet_digits32(), load_digits_split(size=32)
    raise SystemExit(f"unknown model {name!r}; choose sepcnn or mobilenetv2")


def prepare(model, row: Row, calibration: np.ndarray):
    from edgesep.quantize.equalize import EqualizeConfig
    from edgesep.quantize.prepare import prepare_for_int8
    from edgesep.quantize.recipe import QuantRecipe

    recipe = QuantRecipe(per_channel=row.per_channel, equalize=row.equalize is not None, bias_correction=row.bias_correction)
    config = EqualizeConfig(relu6=row.equalize or "skip")
    return prepare_for_int8(model, recipe, data=calibration, equalize_config=config)


def torch_accuracy(model, images: np.ndarray, labels: np.ndarray) -> float:
    from edgesep.models.training import evaluate_accuracy

    return evaluate_accuracy(model, images, labels)


class TfliteEval:
    """Outputs of a .tflite model on NCHW images (handles NHWC input and int8 I/O)."""

    def __init__(self, model: bytes, *, xnnpack: bool = False) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        kwargs = {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
        self.runner = Interpreter(model_content=model, num_threads=1, **kwargs)
        self.runner.allocate_tensors()
        self.input = self.runner.get_input_details()[0]
        self.output = self.runner.get_output_details()[0]

    def _feed(self, image: np.ndarray) -> None:
        x = image[None]
        if tuple(self.input["shape"])[-1] == x.shape[1] and x.shape[1] != x.shape[-1]:
            x = x.transpose(0, 2, 3, 1)
        if self.input["dtype"] != np.float32:
            scale, zero = self.input["quantization"]
            info = np.iinfo(self.input["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.runner.set_tensor(self.input["index"], x.astype(self.input["dtype"]))

    def outputs(self, images: np.ndarray) -> np.ndarray:
        rows = []
        for image in images:
            self._feed(image)
            self.runner.invoke()
            y = self.runner.get_tensor(self.output["index"]).astype(np.float32)
            if self.output["dtype"] != np.float32:
                scale, zero = self.output["quantization"]
                y = (y - zero) * scale
            rows.append(y.reshape(-1))
        return np.stack(rows)

    def latency_ms(self, image: np.ndarray, runs: int) -> float:
        self._feed(image)
        for _ in range(5):
            self.runner.invoke()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.runner.invoke()
            times.append(time.perf_counter() - started)
        return float(np.median(times) * 1e3)

    def op_count(self) -> int:
        return len(self.runner._get_ops_details())  # noqa: SLF001


def lower_and_calibrate(model, input_shape, calibration: np.ndarray, folder: Path, tag: str):
    """Export -> lower -> (float TFLite bytes, calibrated bytes, calibration samples in the TFLite layout)."""
    import onnx

    from edgesep.convert.lowering import lower
    from edgesep.export import export
    from edgesep.quantize import engine

    onnx_path = folder / f"{tag}.onnx"
    export(model, onnx_path, input_shape=tuple(input_shape), force=True)
    lowered = lower(onnx.load(str(onnx_path)))
    samples = [[lowered.to_tflite_input(0, calibration[i : i + 1])] for i in range(len(calibration))]
    float_bytes = engine.float_model(lowered)
    calibrated = engine.calibrate(float_bytes, lambda: iter(samples))
    return float_bytes, calibrated, samples


def bench_model(name: str, *, samples: int, runs: int, rows: tuple[Row, ...]) -> list[dict]:
    from edgesep.numerics import compare
    from edgesep.quantize import engine
    from edgesep.quantize.activation_ranges import apply_activation_ranges
    from edgesep.quantize.ranges import RangeConfig
    from edgesep.quantize.recipe import QuantRecipe

    model, split = load_model(name)
    order = np.random.default_rng(0).permutation(len(split.x_train))[:samples]
    calibration = split.x_train[order]
    float_acc = torch_accuracy(model, split.x_test, split.y_test)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgesep-quant-recipes-") as tmp:
        float_bytes, _, _ = lower_and_calibrate(model, model.input_shape, calibration, Path(tmp), "float")
        float_run = TfliteEval(float_bytes)
        reference = float_run.outputs(split.x_test)
        float_latency = TfliteEval(float_bytes, xnnpack=True).latency_ms(split.x_test[0], runs)
        results.append(
            {"model": name, "recipe": "float32 TFLite", "range": "-", "float_acc": float_acc,
             "acc": float(np.mean(reference.argmax(1) == split.y_test)), "agreement": 1.0, "sqnr_db": float("inf"),
             "latency_ms": float_latency, "ops": float_run.op_count(), "seconds": 0.0}
        )  # fmt: skip
        for row in rows:
            started = time.perf_counter()
            prepared = prepare(model, row, calibration)
            tag = f"r{len(results)}"
            _, calibrated, tfl_samples = lower_and_calibrate(prepared.model, model.input_shape, calibration, Path(tmp), tag)
            for method in row.ranges:
                began = time.perf_counter()
                ranged, _ = apply_activation_ranges(calibrated, tfl_samples, RangeConfig(method=method))
                quantized = engine.quantize_calibrated(ranged, QuantRecipe(per_channel=row.per_channel))
                run = TfliteEval(quantized)
                outputs = run.outputs(split.x_test)
                fidelity = compare(reference, outputs)
                noise = float(np.mean((outputs - reference) ** 2))
                results.append(
                    {"model": name, "recipe": row.label, "range": method, "float_acc": float_acc,
                     "acc": float(np.mean(outputs.argmax(1) == split.y_test)), "agreement": fidelity.top1_agreement,
                     "sqnr_db": 10 * np.log10(float(np.mean(reference**2)) / max(noise, 1e-30)),
                     "latency_ms": TfliteEval(quantized, xnnpack=True).latency_ms(split.x_test[0], runs),
                     "ops": run.op_count(),
                     "seconds": time.perf_counter() - (started if method == row.ranges[0] else began)}
                )  # fmt: skip
                print(_line(results[-1]), file=sys.stderr, flush=True)
    return results


def _line(r: dict) -> str:
    delta = 100 * (r["acc"] - r["float_acc"])
    return (
        f"| {r['model']} | {r['recipe']} | {r['range']} | {100 * r['float_acc']:.2f} | {100 * r['acc']:.2f} | "
        f"{delta:+.2f} | {100 * r['agreement']:.2f} | {r['sqnr_db']:.1f} | {r['latency_ms']:.3f} | {r['ops']} |"
    )


def table(results: list[dict]) -> str:
    head = (
        "| model | recipe | activation range | float acc % | int8 acc % | delta pts | top-1 agreement % | "
        "logit SQNR dB | latency ms | ops |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([head, *(_line(r) for r in results)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="sepcnn,mobilenetv2")
    parser.add_argument("--samples", type=int, default=300, help="calibration images")
    parser.add_argument("--runs", type=int, default=200, help="timed invocations per model")
    parser.add_argument("--train-only", action="store_true", help="only train/cache the MobileNetV2 model")
    args = parser.parse_args(argv)
    if args.train_only:
        load_mobilenet_digits32()
        return 0
    results = []
    for name in args.models.split(","):
        results.extend(bench_model(name.strip(), samples=args.samples, runs=args.runs, rows=ROWS))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

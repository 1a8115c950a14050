"""The on-device agent: runs .tflite models on inputs and writes results files.

This is the ONE module that runs on a device.  It depends only on the standard
library, numpy and a TFLite interpreter (``ai_edge_litert``, else
``tflite_runtime``, else ``tensorflow.lite``), and it never imports edgesep, so
the host can copy this single file to a Raspberry Pi or a phone::

    python agent.py --models float.tflite=float int8.tflite=int8 \
        --inputs inputs.npy --out results --runs 50 --warmup 5 --threads 4 --timeout 600

For each model it writes ``<tag>.results.json`` and ``<tag>.outputs.npz`` into
``--out`` after every chunk of runs (atomically), so an interrupted run keeps
what it measured with ``"complete": false``.

Inputs are a float32 batch ``(N, ...)`` in the model's input layout; each sample
``inputs[i:i+1]`` is quantized for int8/uint8-input models, integer outputs are
dequantized.  Warm-up invocations use the first sample; timed runs cycle
through the samples (at least one timed run per sample, at least ``--runs``
in total), and the outputs of the first pass are saved.  Without ``--inputs``
one seeded standard-normal sample of the model's input shape is used.

Exit codes: 0 done, 2 bad arguments or missing runtime, 3 timeout, 4 a model failed, 143 SIGTERM.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
else:
    try:
        import numpy as np
    except ImportError:  # reported by main() with what to install
        np = None

AGENT_VERSION = "1"
FORMAT_VERSION = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3
EXIT_MODEL_FAILED = 4
EXIT_TERMINATED = 143
CHUNK_SECONDS = 1.0  # write partial results at least this often
MISSING_NUMPY_HINT = "numpy is missing on this device: install it with 'python3 -m pip install numpy' (or 'apt install python3-numpy')"
MISSING_RUNTIME_HINT = (
    "no TFLite interpreter found on this device: install one with "
    "'python3 -m pip install ai-edge-litert' (or tflite-runtime, or tensorflow)"
)


class AgentError(Exception):
    """A failure the agent reports in the results file and on stderr."""


class Terminated(Exception):
    """SIGTERM (the host's or ``timeout``'s hard stop): write partial results, then exit."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Terminated(f"terminated by signal {signum}")


def load_interpreter_class():
    """Return ``(Interpreter class, runtime facts)`` from the first runtime found."""
    try:
        from ai_edge_litert import interpreter as module

        return module.Interpreter, {"name": "ai_edge_litert", "version": _dist_version("ai-edge-litert", module)}
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as module  # type: ignore[import-not-found]

        return module.Interpreter, {"name": "tflite_runtime", "version": _dist_version("tflite-runtime", module)}
    except ImportError:
        pass
    try:
        import tensorflow as tf  # type: ignore[import-not-found]

        return tf.lite.Interpreter, {"name": "tensorflow.lite", "version": tf.__version__}
    except ImportError:
        pass
    raise AgentError(MISSING_RUNTIME_HINT)


def _dist_version(dist: str, module) -> str:
    try:
        from importlib import metadata

        return metadata.version(dist)
    except Exception:
        package = sys.modules.get(module.__name__.split(".")[0])
        return str(getattr(package, "__version__", "unknown"))


def make_interpreter(model_path: str, *, threads: int | None, use_xnnpack: bool):
    interpreter_class, runtime = load_interpreter_class()
    kwargs = {"model_path": model_path, "num_threads": threads}
    if not use_xnnpack:
        resolver = _without_default_delegates(interpreter_class)
        if resolver is not None:
            kwargs["experimental_op_resolver_type"] = resolver
    interpreter = interpreter_class(**kwargs)
    return interpreter, runtime


def _without_default_delegates(interpreter_class):
    module = sys.modules.get(interpreter_class.__module__)
    resolver_type = getattr(module, "OpResolverType", None)
    if resolver_type is None:
        return None
    return resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES


def device_facts() -> dict:
    """CPU model, cores, machine, Python/numpy versions and the emulated flag."""
    cpu = cpu_model()
    if is_emulated():
        cpu = f"{cpu} (emulating {platform.machine()})"
    return {
        "cpu": cpu,
        "cores": os.cpu_count() or 0,
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "hostname": platform.node(),
    }


def cpu_model(cpuinfo_path: str = "/proc/cpuinfo") -> str:
    """The CPU model from /proc/cpuinfo (x86 'model name', ARM 'Model'/'Hardware'/'CPU part')."""
    fields: dict = {}
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, sep, value = line.partition(":")
                if sep and key.strip() not in fields and value.strip():
                    fields[key.strip()] = value.strip()
    except OSError:
        pass
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if key in fields:
            return fields[key]
    if "CPU part" in fields:
        return f"ARM CPU part {fields['CPU part']} (implementer {fields.get('CPU implementer', '?')})"
    return platform.processor() or platform.machine() or "unknown"


def is_emulated() -> bool:
    return os.environ.get("EDGESEP_EMULATED", "") not in ("", "0", "false", "no")


def quantize(values: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    """Float -> integer tensor with the model's (scale, zero_point)."""
    info = np.iinfo(dtype)
    if scale == 0:
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    q = np.round(values.astype(np.float64) / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    if scale == 0:
        return values.astype(np.float32)
    return ((values.astype(np.float64) - zero_point) * scale).astype(np.float32)


class ModelRun:
    """One model's interpreter plus its input/output conversions."""

    def __init__(self, model_path: str, *, threads: int | None, use_xnnpack: bool):
        started = time.perf_counter()
        self.interpreter, self.runtime = make_interpreter(model_path, threads=threads, use_xnnpack=use_xnnpack)
        self.inputs = self.interpreter.get_input_details()
        for detail in self.inputs:
            signature = detail.get("shape_signature")
            if signature is not None and len(signature) and int(signature[0]) == -1:
                shape = [1] + [int(d) for d in detail["shape"][1:]]
                self.interpreter.resize_tensor_input(detail["index"], shape)
        self.interpreter.allocate_tensors()
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        self.init_ms = (time.perf_counter() - started) * 1000.0

    def input_shapes(self) -> list:
        return [[int(d) for d in detail["shape"]] for detail in self.inputs]

    def set_inputs(self, sample: list) -> None:
        for detail, value in zip(self.inputs, sample):
            dtype = np.dtype(detail["dtype"])
            value = np.asarray(value).reshape(detail["shape"])
            if np.issubdtype(dtype, np.integer) and not np.issubdtype(value.dtype, np.integer):
                scale, zero_point = detail["quantization"]
                value = quantize(value, dtype, scale, zero_point)
            self.interpreter.set_tensor(detail["index"], value.astype(dtype, copy=False))

    def invoke_timed(self) -> float:
        started = time.perf_counter()
        self.interpreter.invoke()
        return (time.perf_counter() - started) * 1000.0

    def read_outputs(self) -> list:
        values = []
        for detail in self.outputs:
            value = self.interpreter.get_tensor(detail["index"])
            if np.issubdtype(value.dtype, np.integer):
                scale, zero_point = detail["quantization"]
                value = dequantize(value, scale, zero_point)
            values.append(np.array(value, dtype=np.float32))
        return values


def samples_for(model: ModelRun, inputs, *, seed: int) -> list:
    """Split the input batch into per-invocation samples (one list entry per model input)."""
    if inputs is None:
        rng = np.random.default_rng(seed)
        return [[rng.standard_normal(shape).astype(np.float32) for shape in model.input_shapes()]]
    arrays = _input_arrays(model, inputs)
    count = None
    per_input = []
    for array, shape in zip(arrays, model.input_shapes()):
        batch = int(shape[0]) if shape else 1
        if list(array.shape[1:]) != list(shape[1:]):
            raise AgentError(f"input batch shape {list(array.shape)} does not fit model input shape {shape}")
        if array.shape[0] % batch:
            raise AgentError(f"input batch of {array.shape[0]} is not a multiple of the model batch {batch}")
        chunks = [array[i : i + batch] for i in range(0, array.shape[0], batch)]
        count = len(chunks) if count is None else min(count, len(chunks))
        per_input.append(chunks)
    if not count:
        raise AgentError("the input batch is empty")
    return [[chunks[i] for chunks in per_input] for i in range(count)]


def _input_arrays(model: ModelRun, inputs) -> list:
    if isinstance(inputs, dict):
        names = [detail["name"] for detail in model.inputs]
        if all(name in inputs for name in names):
            return [inputs[name] for name in names]
        if len(inputs) != len(names):
            raise AgentError(f"inputs file holds {sorted(inputs)}, model inputs are {names}")
        return [inputs[key] for key in sorted(inputs)]
    if len(model.inputs) != 1:
        raise AgentError(f"model has {len(model.inputs)} inputs; pass an .npz keyed by input name")
    return [inputs]


class ResultsWriter:
    """Accumulates one model's measurements and writes them atomically."""

    def __init__(self, out_dir: str, tag: str, model_path: str, header: dict):
        self.out_dir = out_dir
        self.tag = tag
        self.header = header
        self.latencies_ms: list = []
        self.outputs: list = []  # per sample: list of arrays (batch-first)
        self.model_path = model_path

    def payload(self, *, complete: bool, error: str | None) -> dict:
        body = dict(self.header)
        body.update(
            {
                "latencies_ms": [round(v, 6) for v in self.latencies_ms],
                "samples": len(self.outputs),
                "complete": complete,
                "error": error,
                "written_at": time.time(),
            }
        )
        return body

    def write(self, *, complete: bool, error: str | None = None) -> None:
        if self.outputs:
            stacked: dict[str, Any] = {
                f"output_{i}": np.concatenate([sample[i] for sample in self.outputs], axis=0) for i in range(len(self.outputs[0]))
            }
            _atomic_write(os.path.join(self.out_dir, f"{self.tag}.outputs.npz"), lambda f: np.savez(f, **stacked))
        text = json.dumps(self.payload(complete=complete, error=error), indent=2, sort_keys=True) + "\n"
        _atomic_write(os.path.join(self.out_dir, f"{self.tag}.results.json"), lambda f: f.write(text.encode("utf-8")))


def _atomic_write(path: str, write) -> None:
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_model(model_path: str, tag: str, inputs, args, *, deadline: float) -> int:
    """Run one model; returns an exit code (0, EXIT_TIMEOUT or EXIT_MODEL_FAILED)."""
    facts = device_facts()
    header = {
        "format_version": FORMAT_VERSION,
        "agent_version": AGENT_VERSION,
        "tag": tag,
        "model_name": os.path.basename(model_path),
        "model_bytes": os.path.getsize(model_path),
        "model_sha256": sha256_of(model_path),
        "warmup": args.warmup,
        "runs": args.runs,
        "threads": args.threads,
        "use_xnnpack": not args.no_xnnpack,
        "inputs": "random" if inputs is None else "given",
        "device": facts,
        "emulated": is_emulated(),
    }
    writer = ResultsWriter(args.out, tag, model_path, header)
    try:
        model = ModelRun(model_path, threads=args.threads, use_xnnpack=not args.no_xnnpack)
        facts["runtime"] = model.runtime
        header.update(
            {
                "init_ms": model.init_ms,
                "input_details": _describe(model.inputs),
                "output_details": _describe(model.outputs),
                "output_names": [detail["name"] for detail in model.outputs],
            }
        )
        samples = samples_for(model, inputs, seed=args.seed)
        total = max(args.runs, len(samples))
        writer.write(complete=False)
        model.set_inputs(samples[0])
        for _ in range(args.warmup):
            model.invoke_timed()
            if time.monotonic() > deadline:
                raise TimeoutError
        last_write = time.monotonic()
        for run in range(total):
            index = run % len(samples)
            model.set_inputs(samples[index])
            writer.latencies_ms.append(model.invoke_timed())
            if run < len(samples):
                writer.outputs.append(model.read_outputs())
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError
            if now - last_write >= CHUNK_SECONDS:
                writer.write(complete=False)
                last_write = now
    except TimeoutError:
        message = f"timeout after {args.timeout:g} s with {len(writer.latencies_ms)} timed runs done"
        writer.write(complete=False, error=message)
        print(f"edgesep-agent: {tag}: {message}", file=sys.stderr)
        return EXIT_TIMEOUT
    except Terminated as error:
        writer.write(complete=False, error=f"{error} after {len(writer.latencies_ms)} timed runs")
        print(f"edgesep-agent: {tag}: {error}", file=sys.stderr)
        return EXIT_TERMINATED
    except AgentError as error:
        writer.write(complete=False, error=str(error))
        print(f"edgesep-agent: {tag}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as error:  # a model the runtime rejects: report, go on with the next
        message = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
        writer.write(complete=False, error=message)
        print(f"edgesep-agent: {tag}: {message}", file=sys.stderr)
        return EXIT_MODEL_FAILED
    writer.write(complete=True)
    return 0


def _describe(details: list) -> list:
    described = []
    for detail in details:
        scale, zero_point = detail.get("quantization", (0.0, 0))
        described.append(
            {
                "name": detail["name"],
                "shape": [int(d) for d in detail["shape"]],
                "dtype": np.dtype(detail["dtype"]).name,
                "scale": float(scale),
                "zero_point": int(zero_point),
            }
        )
    return described


def parse_model_arg(text: str) -> tuple:
    path, sep, tag = text.rpartition("=")
    if not sep:
        path, tag = text, os.path.splitext(os.path.basename(text))[0]
    if not path or not tag or "/" in tag or tag.startswith("."):
        raise argparse.ArgumentTypeError(f"expected MODEL.tflite=TAG, got {text!r}")
    return path, tag


def load_inputs(path: str | None):
    if path is None:
        return None
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return {key: loaded[key] for key in loaded.files}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent.py", description="Run .tflite models and write edgesep results files.")
    parser.add_argument("--models", nargs="+", type=parse_model_arg, default=[], metavar="MODEL=TAG")
    parser.add_argument("--inputs", default=None, help=".npy batch (N, ...) or .npz keyed by input name")
    parser.add_argument("--out", default=None, help="results folder (created)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for all models together")
    parser.add_argument("--no-xnnpack", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--check-runtime", action="store_true", help="print the runtime as JSON and exit")
    return parser


def main(argv: list | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if np is None:
        print(f"edgesep-agent: {MISSING_NUMPY_HINT}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.check_runtime:
        return _check_runtime()
    if not args.models or not args.out:
        parser.print_usage(sys.stderr)
        print("edgesep-agent: --models and --out are required", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.runs < 0 or args.warmup < 0 or args.timeout <= 0:
        print("edgesep-agent: --runs/--warmup must be >= 0 and --timeout > 0", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        load_interpreter_class()
    except AgentError as error:
        print(f"edgesep-agent: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    os.makedirs(args.out, exist_ok=True)
    try:
        inputs = load_inputs(args.inputs)
    except (OSError, ValueError) as error:
        print(f"edgesep-agent: cannot read inputs {args.inputs}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    deadline = time.monotonic() + args.timeout
    signal.signal(signal.SIGTERM, _on_sigterm)
    worst = 0
    for path, tag in args.models:
        if not os.path.isfile(path):
            print(f"edgesep-agent: model not found: {path}", file=sys.stderr)
            return EXIT_BAD_INPUT
        code = run_model(path, tag, inputs, args, deadline=deadline)
        worst = max(worst, code)
        if code in (EXIT_TIMEOUT, EXIT_TERMINATED):
            break
    return worst


def _check_runtime() -> int:
    try:
        _, runtime = load_interpreter_class()
    except AgentError as error:
        print(f"edgesep-agent: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps({"runtime": runtime, "device": device_facts(), "emulated": is_emulated()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

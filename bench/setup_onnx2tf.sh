#!/usr/bin/env bash
# Create the separate benchmark environment with onnx2tf and its pinned stack.
#
# onnx2tf pins an older stack (tensorflow 2.19, tf-keras 2.19, numpy 1.26,
# onnx 1.19, onnxruntime 1.23, onnxsim 0.4.36, ...) that conflicts with edgesep's
# own environment, so it lives in bench/.venv-onnx2tf (git-ignored) and the
# benchmarks call its `onnx2tf` executable as a subprocess. It is never a
# dependency of edgesep.
#
# Usage: bash bench/setup_onnx2tf.sh [--recreate]
set -euo pipefail

ONNX2TF_VERSION="${ONNX2TF_VERSION:-1.29.24}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${ONNX2TF_VENV:-$HERE/.venv-onnx2tf}"
PYTHON="${PYTHON:-python3}"

if [[ "${1:-}" == "--recreate" && -d "$VENV" ]]; then
  rm -rf -- "$VENV"
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# onnx2tf's wheel pins every dependency it needs (exact versions).
"$VENV/bin/python" -m pip install --quiet "onnx2tf==${ONNX2TF_VERSION}"
"$VENV/bin/onnx2tf" -h >/dev/null
end=$(date +%s)
echo "onnx2tf ${ONNX2TF_VERSION} ready in $VENV ($((end - start)) s)"
"$VENV/bin/python" -c "import tensorflow as tf, numpy, onnx; print('tensorflow', tf.__version__, 'numpy', numpy.__version__, 'onnx', onnx.__version__)"

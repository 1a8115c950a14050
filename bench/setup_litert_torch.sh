#!/usr/bin/env bash
# Create the separate benchmark environment with litert-torch (Google's PyTorch -> TFLite converter).
#
# litert-torch pins its own stack (torch<2.15, ai-edge-litert 2.3.*, litert-converter 0.5.*,
# ai-edge-quantizer 0.10.*, torchao, jax, transformers, ...) that conflicts with edgesep's own
# environment, so it lives in bench/.venv-litert-torch (git-ignored) and the benchmarks run its
# python as a subprocess (bench/anchors_zoo.py). It is never a dependency of edgesep.
#
# torch: litert-torch 0.10 wants torch>=2.4,<2.15; the default here is 2.14.1 (the newest that fits, and the
# torch of edgesep's own venv). The CPU builds of torch + torchvision are taken from the PyTorch CPU index
# (TORCH_INDEX) when it is reachable; otherwise the PyPI (CUDA) builds are installed: a CPU torch with the
# PyPI torchvision does not work (torchvision's _C links libtorch_cuda, so `import torchvision` fails with
# "operator torchvision::nms does not exist").
#
# Usage: bash bench/setup_litert_torch.sh [--recreate]
set -euo pipefail

LITERT_TORCH_VERSION="${LITERT_TORCH_VERSION:-0.10.0}"
TORCH_VERSION="${TORCH_VERSION:-2.14.1}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${LITERT_TORCH_VENV:-$HERE/.venv-litert-torch}"
PYTHON="${PYTHON:-python3}"
TORCH_INDEX="${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"

# torchvision release of each torch minor (torchvision pins torch exactly).
declare -A TORCHVISION_OF=(
  [2.4]=0.19 [2.5]=0.20 [2.6]=0.21 [2.7]=0.22 [2.8]=0.23 [2.9]=0.24 [2.10]=0.25 [2.11]=0.26 [2.12]=0.27
  [2.13]=0.28 [2.14]=0.29
)
TORCH_MINOR="$(echo "$TORCH_VERSION" | cut -d. -f1,2)"
TORCHVISION_SPEC="${TORCHVISION_SPEC:-torchvision==${TORCHVISION_OF[$TORCH_MINOR]}.*}"

if [[ "${1:-}" == "--recreate" && -d "$VENV" ]]; then
  rm -rf -- "$VENV"
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade pip

# 1. torch + torchvision: CPU builds if the CPU index is reachable, else the PyPI ones.
TORCH_SPEC="${TORCH_SPEC:-torch==${TORCH_VERSION}}"
TORCH_ARGS=()
if "${PIP[@]}" download --quiet --no-deps --timeout 20 --retries 0 -d "$VENV/.probe" --index-url "$TORCH_INDEX" \
    "torch==${TORCH_VERSION}+cpu" >/dev/null 2>&1; then
  TORCH_SPEC="torch==${TORCH_VERSION}+cpu"
  TORCH_ARGS=(--extra-index-url "$TORCH_INDEX")
else
  echo "PyTorch CPU index not reachable: installing the PyPI (CUDA) torch ${TORCH_VERSION}" >&2
fi
rm -rf -- "$VENV/.probe"
"${PIP[@]}" install --quiet "${TORCH_ARGS[@]}" "$TORCH_SPEC" "$TORCHVISION_SPEC"
"$VENV/bin/python" -c "import torchvision" # fails on a CPU torch with a CUDA torchvision

# 2. litert-torch with torch held at what was installed (no silent swap to another build).
# (the distribution's version: torch.__version__ can say 2.14.1+cu130 for the wheel 2.14.1)
TORCH_INSTALLED="$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("torch"))')"
"${PIP[@]}" install --quiet "${TORCH_ARGS[@]}" "litert-torch==${LITERT_TORCH_VERSION}" \
  "torch==${TORCH_INSTALLED}" "$TORCHVISION_SPEC" numpy scikit-image

# 3. The zoo's MTCNN weights (its own dependencies are not needed).
"${PIP[@]}" install --quiet --no-deps "facenet-pytorch==2.6.0"

"$VENV/bin/python" -c "import litert_torch" >/dev/null
end=$(date +%s)
echo "litert-torch ${LITERT_TORCH_VERSION} ready in $VENV ($((end - start)) s)"
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
print(", ".join(f"{name} {version(name)}" for name in
                ("litert-torch", "torch", "torchvision", "torchao", "ai-edge-litert", "litert-converter",
                 "ai-edge-quantizer", "numpy", "scikit-image", "facenet-pytorch")))
EOF

#!/usr/bin/env bash
# Idempotent: builds llama-cpp-python 0.3.36 (same GGUF as gramserve) into its own venv under the
# git-ignored peers/ folder. Builds from source (~7 min on 2 quiet cores; -DGGML_NATIVE=ON for
# AVX2; LLAVA_BUILD stays at its default ON, untested without it).
# Usage: bash benchmarks/peers/setup_llamacpp.sh      (prints the venv's python on success)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${LLAMACPP_VENV:-$ROOT/peers/llamacpp-venv}"
PY="$VENV/bin/python"
if [ -x "$PY" ] && "$PY" -c "import llama_cpp; assert llama_cpp.__version__ == '0.3.36'" 2>/dev/null; then
  echo "llama-cpp-python already installed: $PY"; exit 0
fi
mkdir -p "$(dirname "$VENV")"
[ -x "$PY" ] || python3 -m venv "$VENV"
"$PY" -m pip install -q --upgrade pip
CMAKE_ARGS="-DGGML_NATIVE=ON" CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-2}" \
  "$PY" -m pip install --no-cache-dir "llama-cpp-python==0.3.36" numpy
"$PY" -c "import llama_cpp; print('llama-cpp-python', llama_cpp.__version__)"
echo "$PY"

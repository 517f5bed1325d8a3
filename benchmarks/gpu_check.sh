#!/usr/bin/env bash
# One device-machine call: the kernel tests compiled on the GPU, then the kernel benchmark.
#   bash benchmarks/gpu_check.sh [OUTDIR]     (the device tool sets $OUT)
# Writes kernel_tests.log, kernels_gpu.log and kernels_gpu.json under OUTDIR.
out=${1:-${OUT:-benchmarks/_work/gpu}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$out/device.txt"
$py -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" | tee -a "$out/device.txt"
date -u | tee -a "$out/device.txt"
GRAMSERVE_TEST_DEVICE=cuda timeout 300 $py -m pytest tests/kernels -q -p no:cacheprovider -rs 2>&1 | tee "$out/kernel_tests.log" | tail -25
timeout 360 $py benchmarks/kernels_gpu.py --out "$out/kernels_gpu.json" 2>&1 | tee "$out/kernels_gpu.log"

#!/usr/bin/env bash
# bench_gpu.sh: make bench-gpu: runs scripts/bench_gpu.py (cuBLASLt GEMM TFLOP/s, encoders
# in FP16 beside PyTorch) when CUDA support is compiled in, a device is visible and PyTorch
# is installed; otherwise prints one line saying why and exits 0.
#   scripts/bench_gpu.sh BUILD_DIR    (PYTHON picks the interpreter, default .venv/bin/python)
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
if [ ! -x "$build/tests/gpu/bench_gemm" ]; then
    echo "bench-gpu: skipped: CUDA support is not compiled in (nvcc was not found at build time)"
    exit 0
fi
if ! why=$("$build/tests/gpu/test_backend_ops" --probe 2>/dev/null); then
    echo "bench-gpu: skipped: ${why:-the CUDA probe failed}"
    exit 0
fi
if ! "$py" -c "import torch" 2>/dev/null; then
    echo "bench-gpu: skipped: PyTorch is not installed for $py"
    exit 0
fi
exec "$py" scripts/bench_gpu.py --build "$build"

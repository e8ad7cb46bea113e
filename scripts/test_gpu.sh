#!/usr/bin/env bash
# test_gpu.sh: make test-gpu: the CUDA backend's test suites, on a machine with a CUDA
# device: backend conformance against the CPU (tests/gpu/test_backend_ops.c), the ONNX node
# tests through infd-run --backend cuda, and the end-to-end tests with the daemon on cuda
# (INFD_BACKEND=cuda). Without CUDA support compiled in, or without a visible device, it
# prints one line saying why and exits 0.
#   scripts/test_gpu.sh BUILD_DIR      (PYTHON picks the interpreter, default .venv/bin/python)
set -u
cd "$(dirname "$0")/.."
build=${1:-build}
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=python3
probe=$build/tests/gpu/test_backend_ops
if [ ! -x "$probe" ]; then
    echo "gpu tests: skipped: CUDA support is not compiled in (nvcc was not found at build time)"
    exit 0
fi
if ! why=$("$probe" --probe); then
    echo "gpu tests: skipped: $why"
    exit 0
fi
failed=()
echo "== backend conformance (CUDA against the CPU)"
"$probe" || failed+=(test_backend_ops)
echo "== ONNX node conformance on cuda"
"$py" tests/conformance/run_onnx_node_tests.py --runner "$build/infd-run" --backend cuda \
    --known docs/conformance.md --known docs/cuda.md || failed+=(onnx-conformance)
echo "== end-to-end tests with the daemon on cuda"
INFD_BACKEND=cuda INFD_BIN="$build/infd" INFD_RUN="$build/infd-run" \
    "$py" -m pytest -q -rs tests/e2e tests/model || failed+=(e2e)
if [ ${#failed[@]} -gt 0 ]; then
    echo "gpu tests: FAILED: ${failed[*]}"
    exit 1
fi
echo "gpu tests: all passed"

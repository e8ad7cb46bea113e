#!/usr/bin/env bash
# device_build.sh: on a bare GPU machine (the `device` tool's), with .debs/ and .whl/ from
# make device-deps carried along: unpacks the packages into a prefix (never into /), builds
# infd against it (make DEPS_ROOT=...), installs the wheels into a private folder, and runs
# make test-gpu (and make bench-gpu with --bench). One call does it all, e.g.
#   device run: scripts/device_build.sh --bench      carry: .debs .whl
# Logs go to $OUT when it is set, so that they come back with the call.
set -euo pipefail
cd "$(dirname "$0")/.."
root=/tmp/infd-deps
build=/tmp/infd-gpu-build
mkdir -p "$root"
for f in .debs/*.deb; do dpkg -x "$f" "$root"; done
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/infd-site .whl/*.whl
    export PYTHONPATH=/tmp/infd-site${PYTHONPATH:+:$PYTHONPATH}
fi
export INFD_ONNX_NODE_DIR=$root/usr/share/libonnx-testdata/data/node
libs=$root/usr/lib/x86_64-linux-gnu
# cuBLASLt is opened at run time: from the toolkit, else wherever the image keeps one
if [ ! -e /usr/local/cuda/lib64/libcublasLt.so.13 ]; then
    lt=$(find / -name 'libcublasLt.so.13*' -not -path '/proc/*' 2>/dev/null | head -1)
    [ -n "$lt" ] && libs=$libs:$(dirname "$lt")
fi
# cuDNN (optional, opened on the first convolution) may exist only in the image's PyTorch
# wheels (nvidia/cudnn/lib or nvidia/cu13/lib): its folder joins the library path, and its
# headers, when the toolkit has none, compile the cuDNN path in; nothing when absent
cudnn_lib=$(python3 - 2>/dev/null <<'PY' || true
import glob, os
import nvidia
for d in nvidia.__path__:
    for f in sorted(glob.glob(os.path.join(d, "*", "lib", "libcudnn.so.9"))):
        print(os.path.dirname(f))
        raise SystemExit
PY
)
cudnn_args=()
if [ -n "$cudnn_lib" ]; then
    libs=$libs:$cudnn_lib
    inc=$(dirname "$cudnn_lib")/include
    if [ ! -e /usr/local/cuda/include/cudnn.h ] && [ -e "$inc/cudnn.h" ]; then
        cudnn_args=(CUDNN_INCLUDE="$inc")
    fi
fi
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
log=${OUT:-/tmp}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$log/device.txt"
# CI enforces -Werror; here another compiler version's new warnings must not stop the tests
args=(BUILD="$build" DEPS_ROOT="$root" PYTHON=python3 WARN="-Wall -Wextra"
      ${cudnn_args[@]+"${cudnn_args[@]}"})
targets=("$build/infd-run" "$build/infd" "$build/tests/gpu/test_backend_ops"
         "$build/tests/gpu/bench_gemm")
make -j"$(nproc)" "${args[@]}" "${targets[@]}" >"$log/build.log" 2>&1 ||
    { tail -40 "$log/build.log"; exit 1; }
status=0
make "${args[@]}" test-gpu 2>&1 | tee "$log/test-gpu.log" || status=1
if [ "${1:-}" = --bench ]; then
    make "${args[@]}" bench-gpu 2>&1 | tee "$log/bench-gpu.log" || status=1
    cp docs/benchmarks.md "$log/benchmarks.md"
fi
exit $status

#!/usr/bin/env python3
"""ONNX node conformance: runs the official ONNX backend node tests from Debian's
libonnx-testdata through infd-run and compares every output with the expected one
(numpy allclose with ONNX's defaults rtol=1e-3, atol=1e-7; exact for integers, bools and
strings).

In scope: every test whose ops are all among the ops issue 2 lists (and QuantizeLinear /
DequantizeLinear, for QDQ models) and whose inputs and outputs are tensors. Known failures, each with its reason, are the table in
docs/conformance.md; the run fails if any other test fails or the pass rate drops below
the target, and reports tests in that table that now pass.

One adaptation to the data, not to infd: the Debian 12 test data (ONNX 1.12) stores
bfloat16 tensors as UINT16 with the same bits. Such inputs are relabelled BFLOAT16 before
they are fed, and bfloat16 outputs are compared bit for bit with those UINT16 values.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

# INFD_ONNX_NODE_DIR: the test data unpacked elsewhere (scripts/device_build.sh)
NODE_DIR = os.environ.get("INFD_ONNX_NODE_DIR", "/usr/share/libonnx-testdata/data/node")
DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "conformance.md")
TARGET = 0.97
OPS = set("""Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Reciprocal Relu LeakyRelu Sigmoid Tanh
Erf Softmax LogSoftmax MatMul Gemm Conv MaxPool AveragePool GlobalAveragePool
BatchNormalization LayerNormalization Flatten Reshape Transpose Concat Split Slice Gather
Squeeze Unsqueeze Shape Cast Constant ConstantOfShape Identity Expand Where Equal Less
Greater Not ReduceMean ReduceSum ReduceMax Clip Min Max ArgMax Range Pad Dropout
Tile QuantizeLinear DequantizeLinear""".split())


def in_scope(test_dir):
    path = os.path.join(test_dir, "model.onnx")
    if not os.path.exists(path):
        return False
    model = onnx.load(path, load_external_data=False)
    tensors = all(v.type.HasField("tensor_type")
                  for v in list(model.graph.input) + list(model.graph.output))
    ops = all(n.op_type in OPS and n.domain in ("", "ai.onnx") for n in model.graph.node)
    return tensors and ops


def known_failures(docs):
    """Test names from the first column of the tables in docs (docs/conformance.md)."""
    names = {}
    for doc in docs:
        if os.path.exists(doc):
            for line in open(doc, encoding="utf-8"):
                m = re.match(r"\|\s*`?(test_[A-Za-z0-9_]+)`?\s*\|\s*(.*?)\s*\|", line)
                if m:
                    names[m.group(1)] = m.group(2)
    return names


def compare(expected, actual):
    """Returns None if equal within tolerance, else a short reason."""
    if expected.shape != actual.shape:
        return f"shape {actual.shape} != expected {expected.shape}"
    if expected.dtype != actual.dtype:
        return f"dtype {actual.dtype} != expected {expected.dtype}"
    if expected.dtype.kind in "fc":
        if np.allclose(actual, expected, rtol=1e-3, atol=1e-7, equal_nan=True):
            return None
        diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        return f"max abs diff {np.nanmax(diff) if diff.size else 0:.3g}"
    if np.array_equal(actual, expected):
        return None
    return "values differ"


BF16, UINT16 = onnx.TensorProto.BFLOAT16, onnx.TensorProto.UINT16


def bf16_input(path, declared, tmp):
    """The input file to feed: path itself, or a relabelled copy (see the module doc)."""
    tensor = onnx.load_tensor(path)
    if declared != BF16 or tensor.data_type != UINT16:
        return path
    tensor.data_type = BF16
    fixed = os.path.join(tmp, "bf16_" + os.path.basename(path))
    onnx.save_tensor(tensor, fixed)
    return fixed


def to_array(tensor, declared):
    if declared == BF16 and tensor.data_type in (BF16, UINT16) and tensor.raw_data:
        return np.frombuffer(tensor.raw_data, np.uint16).reshape(tuple(tensor.dims))
    if declared == BF16 and tensor.data_type == UINT16:
        return np.array(tensor.int32_data, np.uint16).reshape(tuple(tensor.dims))
    return numpy_helper.to_array(tensor)


def run_test(runner, test_dir, backend):
    name = os.path.basename(test_dir)
    data = os.path.join(test_dir, "test_data_set_0")
    model = onnx.load(os.path.join(test_dir, "model.onnx"), load_external_data=False)
    in_types = [v.type.tensor_type.elem_type for v in model.graph.input]
    out_types = [v.type.tensor_type.elem_type for v in model.graph.output]
    inputs = sorted((f for f in os.listdir(data) if f.startswith("input_")),
                    key=lambda f: int(f[6:-3]))
    outputs = sorted((f for f in os.listdir(data) if f.startswith("output_")),
                     key=lambda f: int(f[7:-3]))
    with tempfile.TemporaryDirectory() as out_dir:
        cmd = [runner, "--model", os.path.join(test_dir, "model.onnx"), "--threads", "1",
               "--backend", backend, "--output-dir", out_dir]
        for i, f in enumerate(inputs):
            declared = in_types[i] if i < len(in_types) else 0
            cmd += ["--input", bf16_input(os.path.join(data, f), declared, out_dir)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return name, "timed out"
        if proc.returncode != 0:
            return name, (proc.stderr.strip().splitlines() or ["exit %d" % proc.returncode])[-1]
        for i, f in enumerate(outputs):
            declared = out_types[i] if i < len(out_types) else 0
            expected = to_array(onnx.load_tensor(os.path.join(data, f)), declared)
            got_path = os.path.join(out_dir, f"output_{i}.pb")
            if not os.path.exists(got_path):
                return name, f"output {i} missing"
            reason = compare(expected, to_array(onnx.load_tensor(got_path), declared))
            if reason:
                return name, f"output {i}: {reason}"
    return name, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runner", default="build/infd-run")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--known", action="append",
                    help="a document whose tables list known failures (repeatable; default "
                         "docs/conformance.md)")
    ap.add_argument("--filter", default="", help="only tests whose name contains this")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    tests = [os.path.join(NODE_DIR, d) for d in sorted(os.listdir(NODE_DIR))
             if args.filter in d]
    tests = [t for t in tests if in_scope(t)]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda t: run_test(args.runner, t, args.backend), tests))

    docs = [os.path.relpath(d) for d in (args.known or [DOC])]
    known = known_failures(docs)
    failed = [(n, r) for n, r in results if r]
    passed = len(results) - len(failed)
    print(f"onnx node conformance: {passed} passed, {len(failed)} failed")
    for n, r in failed:
        print(f"  FAIL {n}: {r}{'  (known)' if n in known else ''}")
    unexpected = [n for n, _ in failed if n not in known]
    fixed = [n for n in known if n in dict(results) and dict(results)[n] is None]
    if fixed:
        print(f"  now passing, remove from {', '.join(docs)}: " + ", ".join(fixed))
    if len(docs) > 1:
        fixed = []  # another backend's list (cuda's adds to the CPU's) may name passing tests
    if args.filter:
        return 0 if not failed else 1
    rate = passed / max(len(results), 1)
    print(f"  pass rate {rate:.1%} (target {TARGET:.0%}), "
          f"{len(unexpected)} failure(s) not listed in {', '.join(docs)}")
    return 0 if rate >= TARGET and not unexpected and not fixed else 1


if __name__ == "__main__":
    sys.exit(main())

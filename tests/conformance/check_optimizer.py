#!/usr/bin/env python3
"""Optimizer agreement: runs every in-scope ONNX node test model (the ones
run_onnx_node_tests.py runs) and the models of the other folders of the ONNX test data
(pytorch-converted, pytorch-operator, simple, real), and the benchmark models when --models
names the folder scripts/export_bench_models.py wrote, through infd-run with the graph
optimizer on and off (--no-optimize), and checks that the outputs agree: floats within
1e-5 relative to the larger of 1 and the unoptimized value, everything else exactly.

Both runs use --repeat 2, so the outputs compared come from a run in the planned arena
(where outputs may be written over their inputs), not only from the first run. A model
that fails the same way both times (a known conformance failure) is not a disagreement.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_onnx_node_tests as node_tests  # noqa: E402

RTOL = 1e-5
DATA_DIRS = ["pytorch-converted", "pytorch-operator", "simple", "real"]


def run(runner, model, inputs, out_dir, optimize):
    cmd = [runner, "--model", model, "--threads", "1", "--repeat", "2", "--output-dir", out_dir]
    if not optimize:
        cmd.append("--no-optimize")
    for path in inputs:
        cmd += ["--input", path]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return None, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    outputs, i = [], 0
    while os.path.exists(os.path.join(out_dir, f"output_{i}.pb")):
        path = os.path.join(out_dir, f"output_{i}.pb")
        outputs.append(numpy_helper.to_array(onnx.load_tensor(path)))
        i += 1
    return outputs, None


def disagreement(got, want):
    """None if the optimized outputs agree with the unoptimized ones, else a reason."""
    if len(got) != len(want):
        return f"{len(got)} outputs, unoptimized {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"output {i}: {g.dtype} {g.shape}, unoptimized {w.dtype} {w.shape}"
        if w.dtype.kind in "fc":
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            same = (g64 == w64) | (np.isnan(g64) & np.isnan(w64))  # infinities, NaNs
            with np.errstate(invalid="ignore"):
                close = np.abs(g64 - w64) <= RTOL * np.maximum(1.0, np.abs(w64))
            bad = ~same & ~close
            if bad.any():
                k = int(np.argmax(bad))
                return (f"output {i}: {bad.sum()} elements differ, e.g. {g64.flat[k]!r} vs "
                        f"{w64.flat[k]!r}")
        elif not np.array_equal(g, w):
            return f"output {i}: values differ"
    return None


def check(runner, name, model, inputs):
    with tempfile.TemporaryDirectory() as tmp:
        dirs = [os.path.join(tmp, "opt"), os.path.join(tmp, "ref")]
        got, err_opt = run(runner, model, inputs(tmp), dirs[0], True)
        want, err_ref = run(runner, model, inputs(tmp), dirs[1], False)
    if err_opt or err_ref:
        return name, None if err_opt == err_ref else f"optimized: {err_opt}; unoptimized: {err_ref}"
    return name, disagreement(got, want)


def node_test_case(test_dir):
    data = os.path.join(test_dir, "test_data_set_0")
    model = os.path.join(test_dir, "model.onnx")
    types = [v.type.tensor_type.elem_type
             for v in onnx.load(model, load_external_data=False).graph.input]
    files = sorted((f for f in os.listdir(data) if f.startswith("input_")),
                   key=lambda f: int(f[6:-3]))

    def inputs(tmp):
        return [node_tests.bf16_input(os.path.join(data, f), types[i] if i < len(types) else 0,
                                      tmp) for i, f in enumerate(files)]
    return os.path.basename(test_dir), model, inputs


def bench_cases(folder):
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    for name, spec in manifest.items():
        model = os.path.join(folder, spec["model"])
        for batch in spec["batches"]:
            paths = [os.path.join(os.path.dirname(model), f"b{batch}", f"input_{i}.pb")
                     for i in range(len(spec["inputs"]))]
            yield f"{name} batch {batch}", model, (lambda tmp, p=paths: p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runner", default="build/infd-run")
    ap.add_argument("--models", help="benchmark models folder (with manifest.json)")
    ap.add_argument("--filter", default="", help="only node tests whose name contains this")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = ap.parse_args()

    cases = [node_test_case(os.path.join(node_tests.NODE_DIR, d))
             for d in sorted(os.listdir(node_tests.NODE_DIR))
             if args.filter in d and node_tests.in_scope(os.path.join(node_tests.NODE_DIR, d))]
    root = os.path.dirname(node_tests.NODE_DIR)
    for folder in DATA_DIRS if not args.filter else []:
        top = os.path.join(root, folder)
        cases += [node_test_case(os.path.join(top, d)) for d in sorted(os.listdir(top))
                  if os.path.isdir(os.path.join(top, d, "test_data_set_0"))]
    if args.models:
        cases += list(bench_cases(args.models))
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda c: check(args.runner, *c), cases))
    bad = [(n, r) for n, r in results if r]
    print(f"optimizer agreement: {len(results) - len(bad)} of {len(results)} models agree "
          f"(optimized vs --no-optimize, rtol {RTOL:g})")
    for n, r in bad:
        print(f"  DISAGREE {n}: {r}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

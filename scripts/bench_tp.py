#!/usr/bin/env python3
"""Tensor-parallel benchmark on the CPU: a large MLP (4096-16384-4096, ReLU, FP32, batch 64
by default) through infd-run at --tensor-parallel 1 and 2 on this machine's cores, in the
same run, with the same input. TP=2 must give the same outputs as TP=1 (relative error at
most 1e-5), else the script fails. The table goes into docs/benchmarks.md between the
bench-tp markers.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import ROOT, git_commit, machine, write_doc  # noqa: E402

BEGIN, END = "<!-- bench-tp:begin -->", "<!-- bench-tp:end -->"


def build_mlp(path, hidden, inner, seed=0):
    """x[b, hidden] -> MatMul(W1) + b1 -> Relu -> MatMul(W2) + b2, random weights."""
    rng = np.random.default_rng(seed)
    w1 = (rng.standard_normal((hidden, inner)) / np.sqrt(hidden)).astype(np.float32)
    w2 = (rng.standard_normal((inner, hidden)) / np.sqrt(inner)).astype(np.float32)
    b1 = rng.standard_normal(inner).astype(np.float32) * 0.1
    b2 = rng.standard_normal(hidden).astype(np.float32) * 0.1
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h0"]),
             helper.make_node("Add", ["h0", "b1"], ["h1"]),
             helper.make_node("Relu", ["h1"], ["h2"]),
             helper.make_node("MatMul", ["h2", "w2"], ["y0"]),
             helper.make_node("Add", ["y0", "b2"], ["y"])]
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"),
                                                        (b2, "b2"))]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", hidden])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", hidden])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def run(runner, model, x_path, tp, threads, repeat, out_dir):
    cmd = [runner, "--model", model, "--input", x_path, "--threads", str(threads),
           "--tensor-parallel", str(tp), "--repeat", str(repeat), "--report",
           "--output-dir", out_dir]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_tp: {' '.join(cmd)} failed: {p.stderr.strip()}")
    report = json.loads(p.stdout.strip().splitlines()[-1])
    y = numpy_helper.to_array(onnx.load_tensor(os.path.join(out_dir, "output_0.pb")))
    return report, y


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", default=os.path.join(ROOT, "build", "infd-run"))
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--inner", type=int, default=16384)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cpu, cores = machine()
    with tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp:
        model, x_path = os.path.join(tmp, "mlp.onnx"), os.path.join(tmp, "x.pb")
        build_mlp(model, args.hidden, args.inner)
        x = np.random.default_rng(1).standard_normal((args.batch, args.hidden)).astype(np.float32)
        onnx.save_tensor(numpy_helper.from_array(x, "x"), x_path)
        rows, ref = [], None
        # TP=1 uses every core; at TP=N each of the N ranks gets cores/N threads
        for tp in (1, 2):
            out_dir = os.path.join(tmp, f"tp{tp}")
            os.makedirs(out_dir)
            report, y = run(args.runner, model, x_path, tp, max(cores // tp, 1), args.repeat,
                            out_dir)
            if ref is None:
                ref = y
            err = float(np.max(np.abs(y - ref) / np.maximum(np.abs(ref), 1.0)))
            if err > 1e-5:
                sys.exit(f"bench_tp: TP={tp} differs from TP=1 by {err:.2e}")
            per_rank = report.get("weight_bytes_per_rank", [report["weight_bytes"]])
            rows.append((tp, max(cores // tp, 1), report["latency_ms"]["median"],
                         max(per_rank), report.get("allreduce_per_forward", 0), err))
    base = rows[0][2]
    lines = [f"Measured {datetime.date.today()} on {cpu} ({cores} cores), commit "
             f"{git_commit()}; MLP {args.hidden}-{args.inner}-{args.hidden} FP32, batch "
             f"{args.batch}, {args.repeat} runs, median.", "",
             "| TP | threads per rank | median ms | speedup vs TP=1 | weight bytes per rank "
             "| all-reduces per forward | max rel. diff vs TP=1 |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for tp, thr, ms, wb, ar, err in rows:
        lines.append(f"| {tp} | {thr} | {ms:.2f} | {base / ms:.2f}x | {wb:,} | {ar} | {err:.1e} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_doc(args.doc, text, BEGIN, END)
        print("bench_tp: wrote " + args.doc)


if __name__ == "__main__":
    main()

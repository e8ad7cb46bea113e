#!/usr/bin/env python3
"""Graph optimizer benchmark: for the models scripts/export_bench_models.py wrote, the node
counts and latency of infd-run before (--no-optimize) and after its graph optimizer,
beside ONNX Runtime with its default graph optimizations (ORT_ENABLE_ALL), with the same
inputs and threads, in the same run. ONNX Runtime's node count is that of the graph it
runs after its own optimizations. The three are timed in turn, over several rounds; the
median of the rounds' medians is reported. The optimized outputs must agree with ONNX
Runtime's (see bench_cpu.py), else the row is marked FAILED and the script fails. The
table goes into docs/benchmarks.md between the bench-opt markers.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

import onnx
import onnxruntime as ort
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cpu  # noqa: E402

BEGIN, END = "<!-- bench-opt:begin -->", "<!-- bench-opt:end -->"


def infd_report(runner, model, extra=()):
    """infd-run's --report for the model planned with zero inputs."""
    p = subprocess.run([runner, "--model", model, "--report", *extra], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip() or f"infd-run exit {p.returncode}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def ort_node_count(path, threads):
    """Nodes of the graph ONNX Runtime runs after ORT_ENABLE_ALL (its saved optimized
    model)."""
    with tempfile.TemporaryDirectory(prefix="bench-opt-") as tmp:
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return len(onnx.load(so.optimized_model_filepath, load_external_data=False).graph.node)


def bench_model(args, name, spec):
    model = os.path.join(args.models, spec["model"])
    before = infd_report(args.runner, model, ["--no-optimize"])
    after = infd_report(args.runner, model)
    info = {"model": name, "nodes_before": after["nodes_before"],
            "nodes_after": after["nodes_after"], "fusions": after.get("fusions", {}),
            "ort_nodes": ort_node_count(model, args.threads),
            "peak": (before["peak_activation_bytes"], after["peak_activation_bytes"]),
            "unplanned": after["unplanned_activation_bytes"]}
    session = bench_cpu.ort_session(model, ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                    args.threads)
    rows = []
    for batch in spec["batches"]:
        bdir = os.path.join(os.path.dirname(model), f"b{batch}")
        inputs = [os.path.join(bdir, f"input_{i}.pb") for i in range(len(spec["inputs"]))]
        feeds = {n: numpy_helper.to_array(onnx.load_tensor(p))
                 for n, p in zip(spec["inputs"], inputs)}
        ort_ms, want = bench_cpu.time_ort(session, feeds, 3)
        probe, _ = bench_cpu.run_infd(args.runner, model, inputs, args.threads, 3,
                                      ["--no-optimize"])
        slowest = max(ort_ms, probe, 1e-3)
        repeat = args.repeat or int(min(args.max_repeat, max(args.min_repeat,
                                                             args.seconds * 1e3 / slowest)))
        row = {"batch": batch, "repeat": repeat * args.rounds, "error": None}
        times = {"ort_ms": [], "before_ms": [], "after_ms": []}
        try:
            for _ in range(args.rounds):
                times["ort_ms"].append(bench_cpu.time_ort(session, feeds, repeat)[0])
                times["before_ms"].append(bench_cpu.run_infd(
                    args.runner, model, inputs, args.threads, repeat, ["--no-optimize"])[0])
                ms, got = bench_cpu.run_infd(args.runner, model, inputs, args.threads, repeat)
                times["after_ms"].append(ms)
                row["abs_diff"], rel = bench_cpu.max_diff(got, want)
                if rel > bench_cpu.TOLERANCE:
                    row["error"] = f"wrong output ({rel:.1e} of the largest value)"
        except (RuntimeError, ValueError) as e:
            row["error"] = str(e)
        for key, values in times.items():
            row[key] = statistics.median(values) if values else float("nan")
        rows.append(row)
        print(f"{name} batch {batch} x{repeat}: infd {row.get('before_ms', 0):.3f} -> "
              f"{row.get('after_ms', 0):.3f} ms, ORT all opt {row['ort_ms']:.3f} ms"
              + (f"  FAILED: {row['error']}" if row["error"] else ""), flush=True)
    return info, rows


def table(results, args):
    cpu, cores = bench_cpu.machine()
    note = f" {args.note}" if args.note else ""
    lines = [f"Measured {datetime.date.today().isoformat()} on {cpu} ({cores} cores), "
             f"{args.threads} threads, commit {bench_cpu.git_commit()}, "
             f"onnxruntime {ort.__version__}.{note}", "",
             "| model | nodes (ONNX) | infd nodes after | ORT nodes after | peak activations "
             "before -> after | fusions |",
             "|---|---:|---:|---:|---:|---|"]
    for info, _ in results:
        fusions = ", ".join(f"{k} {v}" for k, v in info["fusions"].items()) or "-"
        b, a = info["peak"]
        drop = 100.0 * (1 - info["nodes_after"] / max(info["nodes_before"], 1))
        lines.append(f"| {info['model']} | {info['nodes_before']} | {info['nodes_after']} "
                     f"(-{drop:.0f}%) | {info['ort_nodes']} | {b / 1024:.0f} KiB -> "
                     f"{a / 1024:.0f} KiB | {fusions} |")
    lines += ["", "| model | batch | runs | infd before ms | infd after ms | speedup "
              "| ORT all opt ms | infd after / ORT all opt | max diff |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for info, rows in results:
        for r in rows:
            ort_ms = bench_cpu.fmt_ms(r["ort_ms"])
            if r["error"]:
                lines.append(f"| {info['model']} | {r['batch']} | {r['repeat']} | - | - | - | "
                             f"{ort_ms} | - | FAILED: {r['error'].replace('|', '/')} |")
                continue
            before, after = bench_cpu.fmt_ms(r["before_ms"]), bench_cpu.fmt_ms(r["after_ms"])
            lines.append(f"| {info['model']} | {r['batch']} | {r['repeat']} | {before} | {after} "
                         f"| {r['before_ms'] / r['after_ms']:.2f}x | {ort_ms} "
                         f"| {r['ort_ms'] / r['after_ms']:.2f}x | {r['abs_diff']:.1e} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", default=os.path.join(bench_cpu.ROOT, "build", "infd-run"))
    ap.add_argument("--models", default=os.path.join(bench_cpu.ROOT, "build", "bench"),
                    help="folder with manifest.json from export_bench_models.py")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--repeat", type=int, help="timed runs per case (default: from --seconds)")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="without --repeat, aim for this much time per runtime, case and round")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds that time the three in turn (the median round counts), so "
                         "that a change of load on the machine does not favour one")
    ap.add_argument("--min-repeat", type=int, default=10)
    ap.add_argument("--max-repeat", type=int, default=2000)
    ap.add_argument("--only", nargs="*", default=["encoder", "cnn"],
                    help="model names to run (default: encoder cnn)")
    ap.add_argument("--doc", default=os.path.join(bench_cpu.ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--note", help="a sentence added after the line that says where and when")
    args = ap.parse_args()

    with open(os.path.join(args.models, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    results = [bench_model(args, name, spec) for name, spec in manifest.items()
               if name in args.only]
    text = table(results, args)
    print(text)
    if not args.no_write:
        bench_cpu.write_doc(args.doc, text, BEGIN, END)
        print(f"bench_opt: wrote {os.path.relpath(args.doc)}")
    failed = [f"{info['model']} batch {r['batch']}" for info, rows in results for r in rows
              if r["error"]]
    if failed:
        sys.exit("bench_opt: FAILED: " + ", ".join(failed))


if __name__ == "__main__":
    main()

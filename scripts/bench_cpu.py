#!/usr/bin/env python3
"""CPU benchmark: infd-run without its graph optimizer (--no-optimize: the runtime's kernels
alone) beside ONNX Runtime on the models scripts/export_bench_models.py wrote, with the
same inputs and thread count, in the same run (scripts/bench_opt.py measures the optimizer).
ONNX Runtime runs twice:
with graph optimizations off (ORT_DISABLE_ALL, the peer before any fusion) and with its
default ORT_ENABLE_ALL. Each runtime gets one warm-up run, then the same number of timed
runs; the median is reported. infd's outputs must agree with ONNX Runtime's (max abs diff
at most 1e-3 of the largest reference magnitude), else its speed is not reported and the
script fails. The table goes into docs/benchmarks.md between the bench-cpu markers.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
BEGIN, END = "<!-- bench-cpu:begin -->", "<!-- bench-cpu:end -->"
TOLERANCE = 1e-3
# infd as loaded: this table compares kernels, before any fusion on either side
NO_OPT = ("--no-optimize",)

DOC_HEADER = f"""# Benchmarks

`make bench` regenerates the tables below: `scripts/export_bench_models.py` exports the
models (seeded, with PyTorch) and `scripts/bench_cpu.py` times them. Numbers measured on a
busy or shared machine are not comparable with each other.

## CPU: infd-run against ONNX Runtime

Same models, inputs and thread count, in the same run; median latency after one warm-up.
infd runs with `--no-optimize` (its kernels alone; the next section measures the optimizer).
"ORT no opt" is ONNX Runtime with graph optimizations disabled (the peer before any
fusion; issue 2 asks for at least 0.7x its throughput), "ORT all opt" its default full
optimization (the optimizer issue asks for 1.0x). Ratios are infd throughput over ONNX
Runtime throughput (above 1 means infd is faster). ONNX Runtime is timed around
`run_with_iobinding` from Python, which adds a few microseconds per run (visible only on
the smallest models); infd-run times `rt_session_run` in C. "max diff" is the largest
absolute difference between infd's outputs and ONNX Runtime's (no opt).

{BEGIN}
{END}
"""


def machine():
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return cpu, len(os.sched_getaffinity(0))


def git_commit():
    def git(*args):
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
    head = git("rev-parse", "--short", "HEAD")
    if head.returncode:
        return "unknown"
    # read-only checks (no index refresh): edits to tracked files, or new source files
    dirty = (git("diff-index", "--quiet", "HEAD", "--").returncode != 0
             or git("ls-files", "--others", "--exclude-standard").stdout.strip())
    return head.stdout.strip() + (" + uncommitted changes" if dirty else "")


def ort_session(path, level, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = level
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def time_ort(sess, feeds, repeat):
    """One warm-up, then repeat timed runs; returns (median ms, outputs of the warm-up)."""
    binding = sess.io_binding()
    for name, a in feeds.items():
        binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(a))
    for o in sess.get_outputs():
        binding.bind_output(o.name, "cpu")
    sess.run_with_iobinding(binding)
    outputs = [np.array(a) for a in binding.copy_outputs_to_cpu()]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sess.run_with_iobinding(binding)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), outputs


def run_infd(runner, model, inputs, threads, repeat, extra=()):
    """Returns (median ms, outputs) from infd-run (with extra options); raises RuntimeError
    with its message."""
    with tempfile.TemporaryDirectory(prefix="bench-") as out_dir:
        cmd = [runner, "--model", model, "--threads", str(threads), "--repeat", str(repeat),
               "--report", "--output-dir", out_dir, *extra]
        for path in inputs:
            cmd += ["--input", path]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"infd-run exit {p.returncode}: "
                               f"{p.stderr.strip() or '(no message)'}")
        lines = p.stdout.strip().splitlines()
        report = json.loads(lines[-1]) if lines else {}
        if "latency_ms" not in report:
            raise RuntimeError(f"infd-run printed no report with latency_ms: {p.stdout!r}")
        outputs, i = [], 0
        while os.path.exists(os.path.join(out_dir, f"output_{i}.pb")):
            outputs.append(numpy_helper.to_array(
                onnx.load_tensor(os.path.join(out_dir, f"output_{i}.pb"))))
            i += 1
    return report["latency_ms"]["median"], outputs


def max_diff(got, want):
    """(max abs diff, that diff relative to the largest |want|) over all outputs;
    raises ValueError if the outputs do not even have the same count and shapes."""
    if len(got) != len(want):
        raise ValueError(f"{len(got)} outputs, expected {len(want)}")
    abs_diff, rel = 0.0, 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        if g.shape != w.shape:
            raise ValueError(f"output {i} shape {g.shape}, expected {w.shape}")
        if g.size == 0:
            continue
        d = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
        abs_diff = max(abs_diff, d)
        rel = max(rel, d / max(float(np.max(np.abs(w))), 1e-30))
    return abs_diff, rel


def check_infd(args, model, inputs, want):
    """Runs infd-run briefly; returns (median ms, None) or (None, why it failed)."""
    try:
        ms, got = run_infd(args.runner, model, inputs, args.threads, 3, NO_OPT)
        abs_diff, rel = max_diff(got, want)
    except (RuntimeError, ValueError) as e:
        return None, str(e)
    if rel > TOLERANCE:
        return None, f"wrong output: max abs diff {abs_diff:.3g} ({rel:.1e} of the largest value)"
    return ms, None


def bench_case(args, name, spec, batch, sessions):
    model = os.path.join(args.models, spec["model"])
    bdir = os.path.join(os.path.dirname(model), f"b{batch}")
    inputs = [os.path.join(bdir, f"input_{i}.pb") for i in range(len(spec["inputs"]))]
    feeds = {n: numpy_helper.to_array(onnx.load_tensor(p)) for n, p in zip(spec["inputs"], inputs)}
    ort_ms, want = time_ort(sessions[0], feeds, 3)
    # a wrong answer is not timed; the slower runtime sets the number of runs
    infd_ms, error = check_infd(args, model, inputs, want)
    slowest = max(ort_ms, infd_ms or 0.0, 1e-3)
    repeat = args.repeat or int(min(args.max_repeat,
                                    max(args.min_repeat, args.seconds * 1e3 / slowest)))
    ort_ms, ort_out = zip(*(time_ort(s, feeds, repeat) for s in sessions))
    row = {"model": name, "batch": batch, "repeat": repeat, "ort_ms": ort_ms, "error": error}
    _, rel = max_diff(ort_out[1], ort_out[0])
    if rel > TOLERANCE:
        row["error"] = f"ORT all-opt disagrees with ORT no-opt (rel diff {rel:.1e})"
    if row["error"]:
        return row
    try:
        row["infd_ms"], got = run_infd(args.runner, model, inputs, args.threads, repeat,
                                          NO_OPT)
        row["abs_diff"], rel = max_diff(got, ort_out[0])
        if rel > TOLERANCE:
            row["error"] = f"wrong output on the timed run ({rel:.1e} of the largest value)"
    except (RuntimeError, ValueError) as e:
        row["error"] = str(e)
    return row


def fmt_ms(ms):
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def table(rows, args):
    cpu, cores = machine()
    lines = [f"Measured {datetime.date.today().isoformat()} on {cpu} ({cores} cores), "
             f"{args.threads} threads, commit {git_commit()}, onnxruntime {ort.__version__}.",
             "",
             "| model | batch | runs | infd ms | ORT no opt ms | ORT all opt ms "
             "| infd / ORT no opt | infd / ORT all opt | max diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        no_opt, all_opt = r["ort_ms"]
        if r["error"]:
            infd = ratio1 = ratio2 = "-"
            diff = "FAILED: " + r["error"].replace("|", "\\|").replace("\n", " ")
        else:
            infd, diff = fmt_ms(r["infd_ms"]), f"{r['abs_diff']:.1e}"
            ratio1 = f"{no_opt / r['infd_ms']:.2f}x"
            ratio2 = f"{all_opt / r['infd_ms']:.2f}x"
        lines.append(f"| {r['model']} | {r['batch']} | {r['repeat']} | {infd} | {fmt_ms(no_opt)} "
                     f"| {fmt_ms(all_opt)} | {ratio1} | {ratio2} | {diff} |")
    return "\n".join(lines)


def write_doc(path, text, begin=BEGIN, end=END):
    """Puts text between the begin and end markers of the doc (appended if missing)."""
    doc = open(path, encoding="utf-8").read() if os.path.exists(path) else DOC_HEADER
    if begin not in doc or end not in doc:
        doc = doc.rstrip("\n") + f"\n\n{begin}\n{end}\n"
    head, rest = doc.split(begin, 1)
    tail = rest.split(end, 1)[1]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{begin}\n{text}\n{end}{tail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", default=os.path.join(ROOT, "build", "infd-run"))
    ap.add_argument("--models", default=os.path.join(ROOT, "build", "bench"),
                    help="folder with manifest.json from export_bench_models.py")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="threads for both runtimes (default: all cores)")
    ap.add_argument("--repeat", type=int, help="timed runs per case (default: from --seconds)")
    ap.add_argument("--seconds", type=float, default=2.0,
                    help="without --repeat, aim for this much time per runtime and case")
    ap.add_argument("--min-repeat", type=int, default=10)
    ap.add_argument("--max-repeat", type=int, default=2000)
    ap.add_argument("--only", nargs="*", help="model names to run (default: all)")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args()

    with open(os.path.join(args.models, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    rows = []
    levels = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL]
    for name, spec in manifest.items():
        if args.only and name not in args.only:
            continue
        path = os.path.join(args.models, spec["model"])
        sessions = [ort_session(path, lv, args.threads) for lv in levels]
        for batch in spec["batches"]:
            r = bench_case(args, name, spec, batch, sessions)
            rows.append(r)
            infd = ("FAILED" if r["error"]
                    else f"{r['infd_ms']:.3f} ms (max abs diff {r['abs_diff']:.2e})")
            print(f"{name} batch {batch} x{r['repeat']}: infd {infd}, ORT no opt "
                  f"{r['ort_ms'][0]:.3f} ms, ORT all opt {r['ort_ms'][1]:.3f} ms", flush=True)
            if r["error"]:
                print(f"  {name} batch {batch}: {r['error']}", file=sys.stderr, flush=True)
    text = table(rows, args)
    print(text)
    if not args.no_write:
        write_doc(args.doc, text)
        print(f"bench_cpu: wrote {os.path.relpath(args.doc)}")
    failed = [f"{r['model']} batch {r['batch']}" for r in rows if r["error"]]
    if failed:
        sys.exit("bench_cpu: FAILED (infd's speed not reported): " + ", ".join(failed))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Sparse kernel benchmark: runs tests/bench/bench_sparse.c (built by `make bench-sparse`),
which times infd.SparseLinear's kernel against infd.Linear's dense path (OpenBLAS) on the
same pruned weights in one process, and writes the table behind RT_SPARSE_MIN_SPARSITY
(runtime/rt_sparse.h) into docs/compression.md between the bench-sparse markers, with,
per shape, the smallest sparsity from which the sparse kernel was faster at every row
count. By
default both kernels run on one thread and are timed by the CPU time they take, which a
machine shared with other work distorts least (--wall --threads N: wall-clock time on N
threads). The outputs of the two kernels must agree (relative difference at most 1e-5),
else the script fails.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import ROOT, git_commit, machine, write_doc  # noqa: E402

BEGIN, END = "<!-- bench-sparse:begin -->", "<!-- bench-sparse:end -->"
TOLERANCE = 1e-5


def constant(name):
    """A numeric #define of runtime/rt_sparse.h."""
    with open(os.path.join(ROOT, "runtime", "rt_sparse.h"), encoding="utf-8") as f:
        return float(re.search(rf"#define {name} ([0-9.]+)", f.read()).group(1))


def summary(rows):
    """Per shape, the smallest sparsity from which the sparse kernel was faster at every
    row count; and the range of its speedups where the pruning pass uses it."""
    shapes = {}
    for r in rows:
        shapes.setdefault((r["k"], r["n"]), []).append(r)
    parts = []
    for (k, n), rs in shapes.items():
        wins = [s for s in sorted({r["sparsity"] for r in rs})
                if all(r["dense_ms"] > r["sparse_ms"] for r in rs if r["sparsity"] >= s)]
        parts.append(f"{k} x {n} " + (f"from {wins[0]:.0%}" if wins else "at none"))
    min_sparsity, min_weights = constant("RT_SPARSE_MIN_SPARSITY"), constant("RT_SPARSE_MIN_WEIGHTS")
    used = [r["dense_ms"] / r["sparse_ms"] for r in rows
            if r["sparsity"] >= min_sparsity - 1e-9 and r["k"] * r["n"] >= min_weights]
    text = ("The sparse kernel was faster at every row count: " + "; ".join(parts) + ". "
            f"The pruning pass uses it from RT_SPARSE_MIN_SPARSITY = {min_sparsity:.0%} zeros "
            f"in weights of at least RT_SPARSE_MIN_WEIGHTS = {min_weights:.0f} elements")
    if used:
        text += f"; in those cases here its speedup ranged from {min(used):.2f}x to {max(used):.2f}x"
    return text + "."


def table(rows, args):
    cpu, cores = machine()
    sparsities = sorted({r["sparsity"] for r in rows})
    clock = "wall-clock" if args.wall else "CPU"
    head = ("| K x N | rows | dense ms | "
            + " | ".join(f"sparse {s:.0%}: ms (speedup)" for s in sparsities) + " |")
    lines = [
        f"Measured {datetime.date.today().isoformat()} on {cpu} ({cores} cores), {args.threads} "
        f"thread(s), {clock} time, commit {git_commit()}, by `make bench-sparse`: median of "
        f"rounds that alternate the kernels, about {args.seconds:g} s per case. "
        "\"dense\" is infd.Linear's path (OpenBLAS SGEMM) on the pruned weight, the median "
        "over the sparsities (its time does not depend on the zeros); each speedup is the "
        "dense time of its own case over the sparse time (above 1: the sparse kernel is "
        "faster).",
        "",
        summary(rows),
        "",
        head,
        "|" + "---|" * (3 + len(sparsities)),
    ]
    groups = {}
    for r in rows:
        groups.setdefault((r["k"], r["n"], r["rows"]), {})[r["sparsity"]] = r
    for (k, n, m), by in groups.items():
        dense = statistics.median(by[s]["dense_ms"] for s in sparsities)
        cells = [f"{by[s]['sparse_ms']:.3g} ({by[s]['dense_ms'] / by[s]['sparse_ms']:.2f}x)"
                 for s in sparsities]
        lines.append(f"| {k} x {n} | {m} | {dense:.3g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench_sparse"))
    ap.add_argument("--threads", type=int, default=1, help="kernel threads (default 1)")
    ap.add_argument("--wall", action="store_true",
                    help="time by the wall clock instead of the process's CPU time (which "
                         "adds up the time of every thread: use it with one)")
    ap.add_argument("--seconds", type=float, default=1.5, help="time per case")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "compression.md"))
    args = ap.parse_args()
    cmd = [args.bench, "--threads", str(args.threads), "--seconds", str(args.seconds)]
    if not args.wall:
        cmd.append("--cpu-time")
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_sparse: {' '.join(cmd)} failed: {p.stderr.strip()}")
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    bad = [r for r in rows if not r["rel_diff"] <= TOLERANCE]
    if bad:
        sys.exit(f"bench_sparse: the sparse kernel disagrees with the dense one: {bad[0]}")
    text = table(rows, args)
    print(text)
    write_doc(args.doc, text, BEGIN, END)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Compression benchmark: for the spam model (models/spam) and the BERT-like encoder that
scripts/export_bench_models.py wrote, each compression technique applied by infd-run at
load (--precision, --quantize, --prune, --low-rank) beside the uncompressed model (fp32),
and the distilled spam student (models/spam_student, scripts/distill_spam.py), in the same
run:

  weight bytes  as executed (infd-run --report's weight_bytes), and the ratio to fp32
  latency       infd-run --repeat: the spam model on its 921 TEST rows as one batch, the
                encoder at batch 8, sequence 128; in each of --rounds rounds every variant
                is timed right after fp32; the median of the rounds' medians is reported,
                and the speedup over fp32 as the median of those paired ratios (so that a
                change of load on the shared machine favours none)
  quality       spam: TEST accuracy (p >= 0.5 against the labels); encoder: agreement of
                the hidden states with fp32's, as the mean cosine similarity of the token
                vectors (the accuracy guard's "cosine") and the largest absolute difference
                relative to the largest fp32 value

It then states whether the issue's goals are met by these numbers. The tables go into
docs/compression.md between the bench-compress markers.
"""
import argparse
import datetime
import os
import statistics
import sys
import tempfile

import numpy as np
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_cpu  # noqa: E402
import bench_opt  # noqa: E402
import eval_spam  # noqa: E402

BEGIN, END = "<!-- bench-compress:begin -->", "<!-- bench-compress:end -->"
VARIANTS = [("fp32", []), ("fp16", ["--precision", "fp16"]),
            ("int8 weight-only", ["--quantize", "int8-weight-only"]),
            ("int8 W8A8", ["--quantize", "int8"]), ("prune 50%", ["--prune", "0.5"]),
            ("2:4", ["--prune", "2:4"]), ("low-rank 0.95", ["--low-rank", "0.95"])]
STUDENT = os.path.join(bench_cpu.ROOT, "models", "spam_student", "1", "model.onnx")


def cosine(got, want):
    """Mean cosine similarity of the last-dim vectors of two arrays (rows of zeros agree)."""
    g = got.reshape(-1, got.shape[-1]).astype(np.float64)
    w = want.reshape(-1, want.shape[-1]).astype(np.float64)
    dot, ng, nw = (g * w).sum(1), np.linalg.norm(g, axis=1), np.linalg.norm(w, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where((ng == 0) & (nw == 0), 1.0, dot / (ng * nw))
    return float(np.mean(np.nan_to_num(c, nan=0.0)))


def bench(args, name, inputs, variants, quality, threads):
    """Rows {variant, weight_bytes, ms, speedup, quality...} for one model (variants[0] is
    fp32); a variant that fails carries its error. In each round every variant is timed
    right after a run of fp32, and its speedup is the median over the rounds of those
    paired ratios, so that a change of load on the shared machine between rounds or
    variants cancels out."""
    rows = []
    for label, path, extra in variants:
        row = {"variant": label, "error": None, "times": [], "ratios": []}
        try:
            row["weight_bytes"] = bench_opt.infd_report(args.runner, path, extra)["weight_bytes"]
            row["ms"], outputs = bench_cpu.run_infd(args.runner, path, inputs, threads, 1, extra)
            row["outputs"] = outputs
        except (RuntimeError, ValueError, KeyError) as e:
            row["error"] = str(e).splitlines()[0]
        rows.append(row)
    probe = rows[0].get("ms") or 1.0
    repeat = args.repeat or int(min(args.max_repeat, max(args.min_repeat,
                                                         args.seconds * 1e3 / probe)))
    def timed(path, extra):
        return bench_cpu.run_infd(args.runner, path, inputs, threads, repeat, extra)[0]

    for _ in range(args.rounds):
        for row, (_, path, extra) in zip(rows, variants):
            if row["error"] or rows[0]["error"]:
                continue
            try:
                base = timed(*variants[0][1:])
                rows[0]["times"].append(base)
                if row is not rows[0]:
                    row["times"].append(timed(path, extra))
                row["ratios"].append(base / row["times"][-1])
            except RuntimeError as e:
                row["error"] = str(e).splitlines()[0]
    reference = rows[0].get("outputs")
    for row in rows:
        if not row["error"]:
            row["ms"] = statistics.median(row["times"])
            row["speedup"] = statistics.median(row["ratios"])
            row.update(quality(row["outputs"], reference))
        print(f"{name} {row['variant']}: " + (f"FAILED: {row['error']}" if row["error"] else
              f"{row['weight_bytes']} weight bytes, {row['ms']:.3f} ms x{repeat}"), flush=True)
    for row in rows:
        row.pop("outputs", None)
    return rows, repeat


def spam_rows(args):
    _, _, test_x, test_y = eval_spam.load_split()
    x, labels = np.array(test_x, dtype=np.float32), np.array(test_y) == 1
    model = os.path.join(bench_cpu.ROOT, "models", "spam", "1", "model.onnx")
    variants = [(label, model, extra) for label, extra in VARIANTS]
    if os.path.exists(STUDENT):
        variants.append(("distilled student", STUDENT, []))

    def quality(outputs, _):
        return {"accuracy": float(np.mean((outputs[0][:, 0] >= 0.5) == labels))}

    with tempfile.TemporaryDirectory(prefix="bench-compress-") as tmp:
        path = os.path.join(tmp, "features.pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(x, name="features").SerializeToString())
        return bench(args, "spam", [path], variants, quality, args.spam_threads)


def encoder_rows(args):
    model = os.path.join(args.models, "encoder", "model.onnx")
    inputs = [os.path.join(args.models, "encoder", "b8", f"input_{i}.pb") for i in range(2)]

    def quality(outputs, reference):
        _, rel = bench_cpu.max_diff(outputs, reference)
        return {"cosine": cosine(outputs[0], reference[0]), "max_rel_diff": rel}

    return bench(args, "encoder", inputs, [(v, model, e) for v, e in VARIANTS], quality,
                 args.threads)


def fmt_row(row, base, quality):
    if row["error"]:
        return f"| {row['variant']} | - | - | - | - | FAILED: {row['error'].replace('|', '/')} |"
    return (f"| {row['variant']} | {row['weight_bytes']:,} | "
            f"{row['weight_bytes'] / base['weight_bytes']:.2f}x | "
            f"{bench_cpu.fmt_ms(row['ms'])} | {row['speedup']:.2f}x | {quality(row)} |")


def goals(spam, encoder):
    """The issue's three goals against these numbers: lines of text."""
    by = lambda rows: {r["variant"]: r for r in rows if not r["error"]}
    s, e = by(spam), by(encoder)
    lines = []
    if "fp32" in s and "int8 W8A8" in s:
        drop = 100 * (s["fp32"]["accuracy"] - s["int8 W8A8"]["accuracy"])
        lines.append(f"- Spam accuracy under INT8 (W8A8) within 0.5 points of fp32: "
                     f"{100 * s['int8 W8A8']['accuracy']:.2f}% vs {100 * s['fp32']['accuracy']:.2f}%"
                     f" ({0.0 - drop:+.2f} points): **{'met' if drop <= 0.5 else 'not met'}**.")
    if "fp32" in e and "int8 W8A8" in e:
        ratio = e["int8 W8A8"]["weight_bytes"] / e["fp32"]["weight_bytes"]
        lines.append(f"- Encoder INT8 weight bytes at most 0.3x fp32: "
                     f"{e['int8 W8A8']['weight_bytes']:,} of {e['fp32']['weight_bytes']:,} "
                     f"bytes, {ratio:.3f}x: **{'met' if ratio <= 0.3 else 'not met'}**.")
        speed = e["int8 W8A8"]["speedup"]
        lines.append(f"- Encoder INT8 W8A8 throughput at least 1.5x fp32 (batch 8, seq 128, "
                     f"CPU): {speed:.2f}x: **{'met' if speed >= 1.5 else 'not met'}**.")
    missing = [g for g, ok in (("spam W8A8", "int8 W8A8" in s), ("encoder W8A8", "int8 W8A8" in e))
               if not ok]
    if missing:
        lines.append(f"- Not measured (the variant failed): {', '.join(missing)}.")
    return lines


def table(spam, encoder, args):
    cpu, cores = bench_cpu.machine()
    note = f" {args.note}" if args.note else ""
    (srows, srep), (erows, erep) = spam, encoder
    lines = [f"Measured {datetime.date.today().isoformat()} on {cpu} ({cores} cores), "
             f"commit {bench_cpu.git_commit()}; medians of {args.rounds} rounds.{note}", "",
             f"Spam model (57-64-32-1 MLP), the 921 TEST rows as one batch, "
             f"{args.spam_threads} thread(s), {srep} runs per round:", "",
             "| variant | weight bytes | vs fp32 | latency ms | speedup | TEST accuracy |",
             "|---|---:|---:|---:|---:|---:|"]
    base = next((r for r in srows if r["variant"] == "fp32" and not r["error"]), None)
    for r in srows:
        if base:
            lines.append(fmt_row(r, base, lambda r: f"{100 * r['accuracy']:.2f}%"))
    lines += ["", f"BERT-like encoder (2 layers, hidden 256, vocabulary 30522), batch 8, "
              f"sequence 128, {args.threads} thread(s), {erep} runs per round; agreement with "
              "fp32's hidden states:", "",
              "| variant | weight bytes | vs fp32 | latency ms | speedup | cosine / max rel diff |",
              "|---|---:|---:|---:|---:|---:|"]
    base = next((r for r in erows if r["variant"] == "fp32" and not r["error"]), None)
    for r in erows:
        if base:
            lines.append(fmt_row(r, base,
                                 lambda r: f"{r['cosine']:.5f} / {r['max_rel_diff']:.1e}"))
    lines += ["| distilled student | - | - | - | - | none: distillation is shown on the spam "
              "model |", "", "Goals:", ""] + goals(srows, erows)
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", default=os.path.join(bench_cpu.ROOT, "build", "infd-run"))
    ap.add_argument("--models", default=os.path.join(bench_cpu.ROOT, "build", "bench"),
                    help="folder export_bench_models.py wrote (the encoder)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="infd-run's threads for the encoder (default: all cores)")
    ap.add_argument("--spam-threads", type=int, default=1,
                    help="infd-run's threads for the spam model (default 1: a batch this "
                         "small is timed on one core)")
    ap.add_argument("--repeat", type=int, help="timed runs per variant and round "
                                               "(default: from --seconds)")
    ap.add_argument("--seconds", type=float, default=1.0,
                    help="without --repeat, aim for this much time per variant and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-repeat", type=int, default=5)
    ap.add_argument("--max-repeat", type=int, default=2000)
    ap.add_argument("--doc", default=os.path.join(bench_cpu.ROOT, "docs", "compression.md"))
    ap.add_argument("--no-write", action="store_true", help="print the tables only")
    ap.add_argument("--note", help="a sentence added after the line that says where and when")
    args = ap.parse_args()

    text = table(spam_rows(args), encoder_rows(args), args)
    print(text)
    if not args.no_write:
        bench_cpu.write_doc(args.doc, text, BEGIN, END)
        print(f"bench_compress: wrote {os.path.relpath(args.doc)}")


if __name__ == "__main__":
    main()

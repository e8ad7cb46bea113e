#!/usr/bin/env python3
"""Distils the spam classifier: trains a smaller student on the probabilities that the
teacher, served by a running infd, gives for Spambase's TRAIN rows, and writes the student
as another model folder (ONNX + config.json) of the repository.

The teacher is queried over HTTP with tritonclient (--url; the script starts nothing
unless --start-infd names an infd binary, which then serves models/ on a free port for the
duration). The student is train_spam.py's network with one narrow hidden layer
(--hidden, default 32) and no dropout, trained with the same recipe on the soft targets
(the teacher's probabilities; no labels), deterministically. Then teacher and student
are compared through infd-run: weight bytes (--report), latency (--repeat on the TEST
rows as one batch, --threads 1, both timed in turn, the median of --rounds rounds) and
TEST accuracy.

Usage: .venv/bin/python scripts/distill_spam.py [--url 127.0.0.1:8000 | --start-infd build/infd]
       [--teacher spam] [--out models/spam_student] [--hidden 32] [--runner build/infd-run]
       [--json FILE]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

import numpy as np
import tritonclient.http as th
from onnx import numpy_helper

import bench_cpu
import bench_opt
import train_spam
from eval_spam import DATA, ROOT, load_split, run_infd

torch = train_spam.torch
BATCH = 1024  # the teacher's max_batch_size


def teacher_probabilities(url, model, x):
    """The served model's spam_probability for each row of x (float32 [n, 57])."""
    client = th.InferenceServerClient(url)
    try:
        probs = []
        for start in range(0, len(x), BATCH):
            rows = x[start:start + BATCH]
            inp = th.InferInput("features", list(rows.shape), "FP32")
            inp.set_data_from_numpy(rows, binary_data=True)
            out = th.InferRequestedOutput("spam_probability", binary_data=True)
            probs.append(client.infer(model, [inp], outputs=[out]).as_numpy("spam_probability"))
        return np.concatenate(probs).astype(np.float32)
    finally:
        client.close()


def start_infd(binary):
    """infd serving a copy of models/ on a free port; returns (daemon, its scratch folder)."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import conftest  # the tests' launcher: a free port, readiness polled with a deadline

    tmp = tempfile.mkdtemp(prefix="distill-")
    repo = os.path.join(tmp, "models")
    shutil.copytree(os.path.join(ROOT, "models"), repo, symlinks=True)
    conftest.INFD_BIN = binary
    return conftest.Daemon(repo), tmp


def write_student(model, out_dir, teacher_dir, name):
    """OUT/1/model.onnx and OUT/config.json (the teacher's config under the new name)."""
    train_spam.export(model, os.path.join(out_dir, "1", "model.onnx"))
    with open(os.path.join(teacher_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg["name"] = name
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")


def latencies(runner, models, x, repeat, rounds, threads):
    """Median latency (ms) of each model on the rows x as one batch: infd-run --repeat,
    the models timed in turn in each round (so that a change of load on the machine does
    not favour one), the median over the rounds."""
    with tempfile.TemporaryDirectory(prefix="distill-") as tmp:
        path = os.path.join(tmp, "x.pb")
        with open(path, "wb") as f:
            f.write(numpy_helper.from_array(x, name="features").SerializeToString())
        times = [[] for _ in models]
        for _ in range(rounds):
            for k, model in enumerate(models):
                times[k].append(bench_cpu.run_infd(runner, model, [path], threads, repeat)[0])
    return [statistics.median(t) for t in times]


def measure(runner, model, test_x, test_y):
    """weight bytes as executed and TEST accuracy."""
    probs = run_infd(runner, model, test_x)[:, 0]
    return {"weight_bytes": bench_opt.infd_report(runner, model)["weight_bytes"],
            "accuracy": float(np.mean((probs >= 0.5) == (test_y == 1)))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="127.0.0.1:8000", help="infd serving the teacher")
    ap.add_argument("--start-infd", metavar="BIN",
                    help="start this infd on a copy of models/ instead of using --url")
    ap.add_argument("--teacher", default="spam", help="the teacher's model name")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "spam_student"))
    ap.add_argument("--hidden", type=int, nargs="*", default=[32],
                    help="the student's hidden layer widths (none: logistic regression)")
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--runner", default=os.path.join(ROOT, "build", "infd-run"))
    ap.add_argument("--repeat", type=int, default=200, help="timed runs per round")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="infd-run's threads when timing")
    ap.add_argument("--json", help="also write the comparison to this file")
    args = ap.parse_args()

    train_x, _, test_x, test_y = (np.array(a, dtype=np.float32) for a in load_split(args.data))
    daemon, tmp = start_infd(args.start_infd) if args.start_infd else (None, None)
    try:
        soft = teacher_probabilities(daemon.url if daemon else args.url, args.teacher, train_x)
    finally:
        if daemon:
            daemon.stop()
            shutil.rmtree(tmp)
    print(f"teacher '{args.teacher}': {len(soft)} TRAIN probabilities "
          f"(mean {float(soft.mean()):.3f})", flush=True)

    torch.manual_seed(train_spam.SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    # numpy arrays cross to torch as lists (see train_spam.import_torch)
    student = train_spam.train(torch.tensor(train_x.tolist()), torch.tensor(soft.tolist()),
                               hidden=tuple(args.hidden), dropout=0.0)
    name = os.path.basename(os.path.normpath(args.out))
    write_student(student, args.out, os.path.join(ROOT, "models", args.teacher), name)

    teacher_onnx = os.path.join(ROOT, "models", args.teacher, "1", "model.onnx")
    student_onnx = os.path.join(args.out, "1", "model.onnx")
    t, s = (measure(args.runner, m, test_x, test_y) for m in (teacher_onnx, student_onnx))
    t["latency_ms"], s["latency_ms"] = latencies(args.runner, [teacher_onnx, student_onnx],
                                                 test_x, args.repeat, args.rounds, args.threads)
    result = {"student": name, "hidden": args.hidden, "teacher": t, "student_metrics": s}
    print(f"{'':8} {'weight bytes':>12} {'latency ms (921 rows)':>22} {'TEST accuracy':>14}")
    for label, m in (("teacher", t), ("student", s)):
        print(f"{label:8} {m['weight_bytes']:>12} {m['latency_ms']:>22.4f} {m['accuracy']:>14.4f}")
    print(f"student/teacher: {s['weight_bytes'] / t['weight_bytes']:.3f}x the weights, "
          f"{t['latency_ms'] / s['latency_ms']:.2f}x the speed, "
          f"{100 * (s['accuracy'] - t['accuracy']):+.2f} points of accuracy")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()

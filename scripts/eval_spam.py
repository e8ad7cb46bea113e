#!/usr/bin/env python3
"""Measures a spam model's TEST accuracy as executed by infd's C runtime (infd-run), and
checks that its probabilities agree with onnxruntime's on the same input.

Also defines Spambase's fixed split (data/spambase/README.md: data row i is TEST when
i % 5 == 0), shared with train_spam.py.

Usage: .venv/bin/python scripts/eval_spam.py [--model M.onnx] [--runner build/infd-run]
       [--data CSV] [--min 0.94] [--max-diff 1e-5] [--run-args "--prune 0.5"]
(--run-args: more infd-run flags, such as a compression, split like a shell would)
Exit status: 0 when accuracy >= --min and the max abs difference <= --max-diff, else 1.
"""
import argparse
import csv
import os
import shlex
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data/spambase/spambase.csv")
MODEL = os.path.join(ROOT, "models/spam/1/model.onnx")
RUNNER = os.path.join(ROOT, "build/infd-run")
N_FEATURES = 57


def load_split(path=DATA):
    """Returns (train_x, train_y, test_x, test_y) as lists of rows / 0-1 labels."""
    split = {True: ([], []), False: ([], [])}
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if len(header) != N_FEATURES + 1 or header[-1] != "type":
            raise ValueError(f"{path}: unexpected header")
        for i, row in enumerate(reader):
            xs, ys = split[i % 5 == 0]
            xs.append([float(v) for v in row[:N_FEATURES]])
            ys.append(1.0 if row[N_FEATURES] == "spam" else 0.0)
    return split[False] + split[True]


def run_infd(runner, model, x, extra=()):
    """Runs x through `runner --model model [extra...]` and returns its first output."""
    with tempfile.TemporaryDirectory(prefix="eval_spam.") as tmp:
        in_path = os.path.join(tmp, "X.pb")
        with open(in_path, "wb") as f:
            f.write(numpy_helper.from_array(x, name="features").SerializeToString())
        out_dir = os.path.join(tmp, "out")
        cmd = [runner, "--model", model, "--input", in_path, "--output-dir", out_dir, *extra]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}: "
                               f"{proc.stderr.strip() or proc.stdout.strip()}")
        tensor = onnx.TensorProto()
        with open(os.path.join(out_dir, "output_0.pb"), "rb") as f:
            tensor.ParseFromString(f.read())
        return numpy_helper.to_array(tensor)


def run_ort(model, x):
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def evaluate(model=MODEL, runner=RUNNER, data=DATA, extra=()):
    """Returns infd (run with the infd-run flags extra) and onnxruntime TEST accuracies and
    their max abs probability difference."""
    _, _, test_x, test_y = load_split(data)
    x = np.array(test_x, dtype=np.float32)
    y = np.array(test_y, dtype=np.float32).reshape(-1, 1)
    infd = run_infd(runner, model, x, extra)
    ort = run_ort(model, x)
    if infd.shape != y.shape or infd.dtype != np.float32:
        raise RuntimeError(f"infd-run output is {infd.dtype} {infd.shape}, "
                           f"expected float32 {y.shape}")
    return {
        "rows": len(y),
        "accuracy_infd": float(np.mean((infd >= 0.5) == (y == 1))),
        "accuracy_ort": float(np.mean((ort >= 0.5) == (y == 1))),
        "max_abs_diff": float(np.max(np.abs(infd.astype(np.float64) - ort))),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--runner", default=RUNNER)
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--min", type=float, default=0.94, help="minimum TEST accuracy")
    ap.add_argument("--max-diff", type=float, default=1e-5,
                    help="maximum abs difference from onnxruntime")
    ap.add_argument("--run-args", default="",
                    help="more infd-run flags, e.g. \"--prune 0.5\" (a compressed model "
                         "differs from onnxruntime: raise --max-diff)")
    args = ap.parse_args()

    r = evaluate(args.model, args.runner, args.data, shlex.split(args.run_args))
    print(f"TEST accuracy on {r['rows']} rows: infd-run {r['accuracy_infd']:.4f}, "
          f"onnxruntime {r['accuracy_ort']:.4f}; "
          f"max abs difference {r['max_abs_diff']:.3g}", flush=True)
    ok = r["accuracy_infd"] >= args.min and r["max_abs_diff"] <= args.max_diff
    if not ok:
        print(f"FAIL: need accuracy >= {args.min} and difference <= {args.max_diff}",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the spam model's validation set for infd's accuracy guard (docs/compression.md):
the TEST rows of Spambase's fixed split (eval_spam.load_split) as

  OUT/input_0.pb  TensorProto "features", FP32 [rows, 57] (the model's input)
  OUT/labels.pb   TensorProto "labels", INT64 [rows] (1: spam, 0: ham)

The output is a pure function of the CSV: running it again writes the same bytes.

Usage: .venv/bin/python scripts/make_validation_set.py [--data CSV]
       [--out models/spam_int8/validation]
"""
import argparse
import os

import numpy as np
from onnx import numpy_helper

from eval_spam import DATA, ROOT, load_split

OUT = os.path.join(ROOT, "models", "spam_int8", "validation")


def write(path, array, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name=name).SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()

    _, _, test_x, test_y = load_split(args.data)
    os.makedirs(args.out, exist_ok=True)
    write(os.path.join(args.out, "input_0.pb"), np.array(test_x, dtype=np.float32), "features")
    write(os.path.join(args.out, "labels.pb"), np.array(test_y, dtype=np.int64), "labels")
    print(f"wrote {len(test_y)} TEST rows ({int(sum(test_y))} spam) to {os.path.relpath(args.out)}")


if __name__ == "__main__":
    main()

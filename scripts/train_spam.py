#!/usr/bin/env python3
"""Trains the spam classifier served as models/spam and writes it as ONNX.

A small MLP (57-64-32-1) on the TRAIN rows of Spambase's fixed split (data/spambase/README.md:
data row i is TEST when i % 5 == 0; eval_spam.load_split reads it). The preprocessing (log1p,
then standardisation with the TRAIN mean and std) is part of the exported graph, so the model
takes raw Spambase values.
The exported weights are averaged over the second half of training (see train()).
Training is deterministic: fixed seeds, deterministic algorithms and one thread, so every run
writes the same bytes.

Usage: .venv/bin/python scripts/train_spam.py [--data CSV] [--output MODEL.onnx]
"""
import argparse
import io
import os
import sys
import warnings

SEED = 20240501
HIDDEN = (64, 32)
EPOCHS = 60
BATCH = 64
LR = 1e-3
WEIGHT_DECAY = 0.1
DROPOUT = 0.3


def import_torch():
    """Debian's torch is built against NumPy 1.x while the venv has NumPy 2, and torch prints
    a long error when it meets it. We never hand NumPy arrays to torch, so hide NumPy from it."""
    saved = sys.modules.get("numpy")
    sys.modules["numpy"] = None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to initialize NumPy")
        import torch
        torch.zeros(1)  # torch looks for NumPy on first tensor creation
    if saved is None:
        del sys.modules["numpy"]
    else:
        sys.modules["numpy"] = saved
    return torch


torch = import_torch()

from eval_spam import DATA, MODEL, N_FEATURES, load_split  # noqa: E402 (after torch, see above)


class SpamNet(torch.nn.Module):
    """log1p, standardisation, MLP, sigmoid: raw features in, spam probability out."""

    def __init__(self, mean, std, hidden=HIDDEN, dropout=DROPOUT):
        super().__init__()
        # Buffers become initializers in the ONNX graph (no Constant nodes).
        self.register_buffer("one", torch.ones(1))
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        sizes = (N_FEATURES,) + tuple(hidden)
        layers = []
        for n_in, n_out in zip(sizes, sizes[1:]):
            layers += [torch.nn.Linear(n_in, n_out), torch.nn.ReLU(), torch.nn.Dropout(dropout)]
        layers.append(torch.nn.Linear(sizes[-1], 1))
        self.mlp = torch.nn.Sequential(*layers)

    def logits(self, x):
        return self.mlp((torch.log(x + self.one) - self.mean) / self.std)

    def forward(self, x):
        return torch.sigmoid(self.logits(x))


def accuracy(probs, y):
    return ((probs >= 0.5).float() == y).float().mean().item()


def train(x, y, hidden=HIDDEN, dropout=DROPOUT):
    """AdamW with a cosine learning-rate schedule; the returned weights are the average over
    the second half of the epochs, which varies less with the seed than early stopping on a
    small validation slice (chosen by 4-fold cross-validation on TRAIN). y may hold soft
    targets in [0, 1] (distill_spam.py trains on a teacher's probabilities)."""
    logs = torch.log(x + 1)
    model = SpamNet(logs.mean(0), logs.std(0), hidden, dropout)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, EPOCHS)
    averaged = torch.optim.swa_utils.AveragedModel(model)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(BATCH):
            opt.zero_grad()
            loss_fn(model.logits(x[idx]), y[idx]).backward()
            opt.step()
        schedule.step()
        if epoch >= EPOCHS // 2:
            averaged.update_parameters(model)
    result = averaged.module
    result.eval()
    return result


def export(model, path):
    import onnx

    buf = io.BytesIO()
    torch.onnx.export(model, torch.zeros(2, N_FEATURES), buf, opset_version=13,
                      input_names=["features"], output_names=["spam_probability"],
                      dynamic_axes={"features": {0: "batch"}, "spam_probability": {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto, full_check=True)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    print(f"wrote {path} ({len(buf.getvalue())} bytes), ops: "
          + " ".join(n.op_type for n in proto.graph.node))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--output", default=MODEL)
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    train_x, train_y, test_x, test_y = (torch.tensor(rows) for rows in load_split(args.data))
    model = train(train_x, train_y.unsqueeze(1))
    with torch.no_grad():
        test_acc = accuracy(model(test_x), test_y.unsqueeze(1))
    print(f"TEST accuracy (torch): {test_acc:.4f} on {len(test_x)} rows")
    export(model, args.output)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Exports the benchmark models to ONNX with PyTorch, deterministically (fixed seeds), and
writes their inputs as TensorProto files, for scripts/bench_cpu.py:

  mlp      57-64-32-1 MLP (Linear-ReLU-Linear-ReLU-Linear-Sigmoid), batch 1 and 1024
  encoder  BERT-like encoder: 2 layers, hidden 256, 4 heads, FFN 1024, GELU (erf),
           LayerNorm, seq 128; inputs token ids and attention mask (int64 [batch, 128]),
           batch 1 and 8
  cnn      3 x (Conv 3x3 + BatchNorm + ReLU) with max pooling, global average pool and a
           linear classifier on 3x64x64 images, batch 1 and 16

All are exported with the TorchScript exporter at opset 14 (so LayerNormalization and GELU
arrive decomposed into primitive ops) with a dynamic batch axis. The CNN keeps its
BatchNormalization nodes (not folded into Conv): that fusion is the optimizer's job.

Layout (generated, not committed): OUT/<model>/model.onnx, OUT/<model>/b<N>/input_<i>.pb
and OUT/manifest.json. Every model is checked against onnxruntime (same outputs as torch)
before it is written to the manifest.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import warnings

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper


def import_torch():
    """Imports Debian's torch, which is built against numpy 1.x: beside the venv's numpy 2
    its numpy bridge is disabled (we do not use it), and it says so on stderr with a
    traceback-like message from Python and a warning from C++ that look like a crash.
    Those go to a scratch file, shown only if the import fails."""
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as scratch:
        os.dup2(scratch.fileno(), 2)
        try:
            import torch as t
            t.set_num_threads(os.cpu_count() or 1)  # the C++ warning comes here
        except BaseException:
            os.dup2(saved, 2)
            scratch.seek(0)
            sys.stderr.write(scratch.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    return t


torch = import_torch()
nn = torch.nn
# Exporting with TrainingMode.PRESERVE (see export) warns about constant folding in
# training mode; our models are in eval mode, where folding is what we want.
warnings.filterwarnings("ignore", message="It is recommended that constant folding")

OPSET = 14
SEED = 0
VOCAB = 30522
SEQ = 128
TOLERANCE = 1e-4  # max |torch - onnxruntime| relative to max |torch|


# Debian's torch is built against numpy 1.x and cannot share buffers with the venv's
# numpy 2, so tensors cross between the two as Python lists.
def to_numpy(t, dtype):
    return np.array(t.detach().tolist(), dtype=dtype)


def to_torch(a):
    return torch.tensor(a.tolist(), dtype=torch.int64 if a.dtype == np.int64 else torch.float32)


def mlp():
    return nn.Sequential(nn.Linear(57, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                         nn.Linear(32, 1), nn.Sigmoid())


class EncoderLayer(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.q, self.k, self.v = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn_in, self.ffn_out = nn.Linear(hidden, ffn), nn.Linear(ffn, hidden)
        self.gelu = nn.GELU()  # exact (erf) form
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def split_heads(self, x):
        return x.view(x.size(0), x.size(1), self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x, mask_bias):
        q, k, v = (self.split_heads(proj(x)) for proj in (self.q, self.k, self.v))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim) + mask_bias
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v)
        ctx = ctx.transpose(1, 2).reshape(x.size(0), x.size(1), -1)
        x = self.ln1(x + self.out(ctx))
        return self.ln2(x + self.ffn_out(self.gelu(self.ffn_in(x))))


class Encoder(nn.Module):
    def __init__(self, layers=2, hidden=256, heads=4, ffn=1024):
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, hidden)
        self.positions = nn.Embedding(SEQ, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(EncoderLayer(hidden, heads, ffn) for _ in range(layers))

    def forward(self, input_ids, attention_mask):
        x = self.ln(self.tokens(input_ids) + self.positions.weight[: input_ids.size(1)])
        # padding positions get a large negative score before the softmax
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


def cnn():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    net = nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2),
                        *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    # non-trivial running statistics, so BatchNormalization is not an identity
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net


def mlp_inputs(rng, batch):
    return [rng.standard_normal((batch, 57), dtype=np.float32)]


def encoder_inputs(rng, batch):
    ids = rng.integers(0, VOCAB, (batch, SEQ), dtype=np.int64)
    mask = np.ones((batch, SEQ), dtype=np.int64)
    for b in range(1, batch):  # the first sequence is full, the others padded
        mask[b, rng.integers(SEQ // 4, SEQ):] = 0
    return [ids, mask]


def cnn_inputs(rng, batch):
    return [rng.standard_normal((batch, 3, 64, 64), dtype=np.float32)]


# name -> (module factory, input names, output names, input generator, batches)
MODELS = {
    "mlp": (mlp, ["x"], ["y"], mlp_inputs, [1, 1024]),
    "encoder": (Encoder, ["input_ids", "attention_mask"], ["last_hidden_state"],
                encoder_inputs, [1, 8]),
    "cnn": (cnn, ["image"], ["logits"], cnn_inputs, [1, 16]),
}


def export(name, out_dir):
    factory, in_names, out_names, make_inputs, batches = MODELS[name]
    torch.manual_seed(SEED)
    model = factory().eval()
    rng = np.random.default_rng(SEED)
    inputs = {b: make_inputs(rng, b) for b in batches}

    path = os.path.join(out_dir, name, "model.onnx")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    axes = {n: {0: "batch"} for n in in_names + out_names}
    with torch.no_grad():
        # PRESERVE on a model in eval mode: exported for inference, but without the eval
        # peephole that would fold BatchNormalization into Conv
        torch.onnx.export(model, tuple(to_torch(a) for a in inputs[batches[0]]), path,
                          input_names=in_names, output_names=out_names, dynamic_axes=axes,
                          opset_version=OPSET, training=torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=True)
    onnx.checker.check_model(path)

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    for b in batches:
        with torch.no_grad():
            expected = to_numpy(model(*(to_torch(a) for a in inputs[b])), np.float32)
        got = sess.run(None, dict(zip(in_names, inputs[b])))[0]
        err = np.abs(got - expected).max() / max(np.abs(expected).max(), 1e-30)
        print(f"{name} batch {b}: onnxruntime vs torch max relative diff {err:.2e}")
        if got.shape != expected.shape or not err <= TOLERANCE:
            sys.exit(f"export_bench_models: {name} batch {b}: onnxruntime disagrees with "
                     f"torch (shape {got.shape} vs {expected.shape}, diff {err:.2e})")
        bdir = os.path.join(out_dir, name, f"b{b}")
        os.makedirs(bdir, exist_ok=True)
        for i, (n, a) in enumerate(zip(in_names, inputs[b])):
            onnx.save_tensor(numpy_helper.from_array(a, n), os.path.join(bdir, f"input_{i}.pb"))
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    print(f"{name}: {path} ops: {' '.join(ops)}")
    return {"model": os.path.relpath(path, out_dir), "inputs": in_names, "batches": batches}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="build/bench", help="output folder (default build/bench)")
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = ap.parse_args()
    manifest = {name: export(name, args.out) for name in args.models}
    with open(os.path.join(args.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""GPU benchmarks (make bench-gpu, on a machine with a CUDA device and PyTorch): cuBLASLt GEMM
throughput against the device's datasheet peak, and two encoders in FP16 through
infd-run --backend cuda beside PyTorch eager FP16 and torch.compile on the same weights.

  GEMM      build/tests/gpu/bench_gemm: square products of 4096 and 8192 in FP32, TF32,
            FP16 and BF16 (one JSON line each)
  encoders  the BERT-like encoder of export_bench_models.py (2 layers, hidden 256) and a
            BERT-base-sized one (12 layers, hidden 768, 12 heads, FFN 3072), seq 128,
            batch 1, 32 and 128, exported with PyTorch to ONNX (opset 14)

Every latency is host to host: inputs from host memory, outputs back in host memory
(infd-run's per-run time; for PyTorch the copies are inside the timed region too), the
median of --repeat runs after a warm-up. infd runs with CUDA Graphs (its default) and
without (--no-graphs); its report gives the kernel launches per inference both ways.
Results go to docs/benchmarks.md between the bench-gpu markers, with the device, date and
commit.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench_cpu  # noqa: E402  (write_doc)
import export_bench_models as ebm  # noqa: E402  (the Encoder module; imports torch)

torch = ebm.torch
BEGIN, END = "<!-- bench-gpu:begin -->", "<!-- bench-gpu:end -->"
BATCHES = [1, 32, 128]
ENCODERS = {
    "encoder (2x256)": dict(layers=2, hidden=256, heads=4, ffn=1024),
    "BERT-base (12x768)": dict(layers=12, hidden=768, heads=12, ffn=3072),
}
# dense datasheet peaks in TFLOP/s (no sparsity), by a substring of the device name
PEAKS = {
    "H100 PCIe": {"fp32": 51, "tf32": 378, "fp16": 756, "bf16": 756},
    "H100": {"fp32": 67, "tf32": 495, "fp16": 989, "bf16": 989},
    "H200": {"fp32": 67, "tf32": 495, "fp16": 989, "bf16": 989},
    "A100": {"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312},
}


def peaks_for(device):
    for key, p in PEAKS.items():
        if key in device:
            return p
    return {}


def gemm_rows(build):
    p = subprocess.run([os.path.join(build, "tests", "gpu", "bench_gemm")], capture_output=True,
                       text=True)
    if p.returncode != 0:
        raise RuntimeError(f"bench_gemm failed: {p.stderr.strip()}")
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    device = rows[0]["device"]
    return device, rows[1:]


def export_encoder(name, cfg, out_dir):
    """The encoder with fixed weights: ONNX file, inputs per batch, and the torch module."""
    torch.manual_seed(0)
    model = ebm.Encoder(**cfg).eval()
    rng = np.random.default_rng(0)
    inputs = {b: ebm.encoder_inputs(rng, b) for b in BATCHES}
    path = os.path.join(out_dir, "model.onnx")
    args = tuple(torch.from_numpy(a) for a in inputs[1])
    kw = dict(input_names=["input_ids", "attention_mask"], output_names=["last_hidden_state"],
              dynamic_axes={n: {0: "batch"} for n in ("input_ids", "attention_mask",
                                                      "last_hidden_state")},
              opset_version=ebm.OPSET, do_constant_folding=True)
    with torch.no_grad():
        try:  # the TorchScript exporter, as export_bench_models.py uses
            torch.onnx.export(model, args, path, dynamo=False, **kw)
        except TypeError:
            torch.onnx.export(model, args, path, **kw)
    onnx.checker.check_model(path)
    files = {}
    for b in BATCHES:
        d = os.path.join(out_dir, f"b{b}")
        os.makedirs(d, exist_ok=True)
        files[b] = []
        for i, (n, a) in enumerate(zip(["input_ids", "attention_mask"], inputs[b])):
            f = os.path.join(d, f"input_{i}.pb")
            onnx.save_tensor(numpy_helper.from_array(a, n), f)
            files[b].append(f)
    return path, model, inputs, files


def run_infd(runner, model, files, repeat, graphs):
    cmd = [runner, "--model", model, "--backend", "cuda", "--precision", "fp16", "--repeat",
           str(repeat), "--report"]
    if not graphs:
        cmd.append("--no-graphs")
    for f in files:
        cmd += ["--input", f]
    with tempfile.TemporaryDirectory() as out:
        p = subprocess.run(cmd + ["--output-dir", out], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip() or f"infd-run exit {p.returncode}")
        report = json.loads(p.stdout.strip().splitlines()[-1])
        y = numpy_helper.to_array(onnx.load_tensor(os.path.join(out, "output_0.pb")))
    return report["latency_ms"]["median"], report.get("launches", {}), y


def time_torch(fn, inputs, repeat):
    """Median host-to-host milliseconds of fn on host inputs, after a warm-up."""
    def once():
        dev = [torch.from_numpy(a).cuda(non_blocking=True) for a in inputs]
        return fn(*dev).float().cpu()
    with torch.no_grad():
        for _ in range(3):
            y = once()
        times = []
        for _ in range(repeat):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            y = once()
            torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), y.numpy()


def rel_diff(a, b):
    return float(np.abs(a.astype(np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


def encoder_rows(runner, repeat, work):
    rows = []
    for name, cfg in ENCODERS.items():
        out_dir = os.path.join(work, name.split()[0])
        path, model, inputs, files = export_encoder(name, cfg, out_dir)
        fp32 = model.cuda()
        with torch.no_grad():
            refs = {b: fp32(*(torch.from_numpy(a).cuda() for a in inputs[b])).cpu().numpy()
                    for b in BATCHES}
        half = model.half()
        compiled = torch.compile(half)
        for b in BATCHES:
            infd_ms, launches, y = run_infd(runner, path, files[b], repeat, True)
            eager_infd_ms, eager_launches, _ = run_infd(runner, path, files[b], repeat, False)
            torch_ms, _ = time_torch(half, inputs[b], repeat)
            compile_ms, _ = time_torch(compiled, inputs[b], repeat)
            rows.append(dict(model=name, batch=b, infd_ms=infd_ms, infd_eager_ms=eager_infd_ms,
                             torch_ms=torch_ms, compile_ms=compile_ms,
                             launches_graph=launches.get("last_run"),
                             launches_eager=eager_launches.get("eager"),
                             replayed=launches.get("graph_replay"),
                             diff=rel_diff(y, refs[b])))
        del fp32, half, compiled
        torch.cuda.empty_cache()
    return rows


def table(device, commit, gemm, enc, repeat):
    peaks = peaks_for(device)
    lines = [f"Measured {datetime.date.today()} on {device}, commit {commit}; "
             f"`make bench-gpu` (scripts/bench_gpu.py), medians of {repeat} runs.", "",
             "cuBLASLt GEMM through the CUDA backend (square MatMul, device-resident operands):",
             "", "| precision | n | ms | TFLOP/s | datasheet peak | of peak |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in gemm:
        peak = peaks.get(r["precision"])
        share = f"{100 * r['tflops'] / peak:.0f}%" if peak else "?"
        lines.append(f"| {r['precision']} | {r['n']} | {r['ms']:.3f} | {r['tflops']:.1f} | "
                     f"{peak or '?'} | {share} |")
    lines += ["", "Encoders in FP16, host to host (seq 128). infd: `infd-run --backend cuda "
              "--precision fp16` (FP16 GEMMs, FP32 accumulation and activations); PyTorch: "
              "`model.half()` eager and `torch.compile`; diff: max |infd - PyTorch FP32| / "
              "max |PyTorch FP32|.", "",
              "| model | batch | infd ms (graphs) | infd ms (no graphs) | PyTorch eager ms | "
              "torch.compile ms | vs eager | vs compile | launches (graph / eager) | diff |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in enc:
        lines.append(f"| {r['model']} | {r['batch']} | {r['infd_ms']:.3f} | "
                     f"{r['infd_eager_ms']:.3f} | {r['torch_ms']:.3f} | {r['compile_ms']:.3f} | "
                     f"{r['torch_ms'] / r['infd_ms']:.2f}x | {r['compile_ms'] / r['infd_ms']:.2f}x | "
                     f"{r['launches_graph']} / {r['launches_eager']} | {r['diff']:.1e} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("bench-gpu: skipped: PyTorch sees no CUDA device")
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip() or "unknown"
    device, gemm = gemm_rows(args.build)
    for r in gemm:
        print(json.dumps(r))
    with tempfile.TemporaryDirectory() as work:
        enc = encoder_rows(os.path.join(args.build, "infd-run"), args.repeat, work)
    for r in enc:
        print(json.dumps(r))
    text = table(device, commit, gemm, enc, args.repeat)
    print(text)
    bench_cpu.write_doc(args.doc, text, BEGIN, END)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""plan_table.py: the memory planner's answers for Llama-2 7B, 13B and 70B at tensor-parallel
sizes 1, 2, 4 and 8, as a markdown table, from `infd-run --plan --report`.

    scripts/plan_table.py [--runner build/infd-run] [--update docs/parallel.md]

With --update the table replaces the lines between the plan-table markers of that file;
otherwise it is printed."""
import argparse
import json
import pathlib
import subprocess
import sys

MODELS = ["llama-2-7b", "llama-2-13b", "llama-2-70b"]
SIZES = [1, 2, 4, 8]
BEGIN, END = "<!-- plan-table:begin -->", "<!-- plan-table:end -->"
GIB = 1 << 30


def plan(runner, config, tp, memory, dtype):
    cmd = [runner, "--plan", "--hf-config", str(config), "--tensor-parallel", str(tp),
           "--dtype", dtype, "--device-memory", memory, "--report"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(runner, configs, memory, dtype):
    rows = [f"Planned by `infd-run --plan --dtype {dtype} --device-memory {memory}` "
            "(batch 1 x 4096 tokens, attention scores materialized, 1 GiB reserve):",
            "",
            "| model | TP | weights / rank | activations / rank | KV cache / rank "
            "| KV tokens | fits |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for model in MODELS:
        for tp in SIZES:
            r = plan(runner, configs / f"{model}.json", tp, memory, dtype)
            rows.append(
                f"| {model} | {tp} | {r['weight_bytes_per_rank'] / GIB:.2f} GiB "
                f"| {r['activation_bytes_per_rank'] / GIB:.2f} GiB "
                f"| {r['kv_cache_bytes_per_rank'] / GIB:.2f} GiB "
                f"| {r['max_tokens_in_kv_cache']:,} | {'yes' if r['fits'] else 'no'} |")
    return "\n".join(rows)


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runner", default=str(root / "build/infd-run"))
    ap.add_argument("--configs", type=pathlib.Path, default=root / "data/hf_configs")
    ap.add_argument("--device-memory", default="80GiB")
    ap.add_argument("--dtype", default="fp16")
    ap.add_argument("--update", type=pathlib.Path, help="markdown file to rewrite in place")
    args = ap.parse_args()
    text = table(args.runner, args.configs, args.device_memory, args.dtype)
    if not args.update:
        print(text)
        return 0
    doc = args.update.read_text()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{args.update}: no {BEGIN} ... {END} markers")
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    args.update.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

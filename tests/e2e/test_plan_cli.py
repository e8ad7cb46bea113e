"""`infd-run --plan` end to end on the committed Llama-2 configs: the JSON report as the
last stdout line, 70B in fp16 refused on one 80 GiB device and accepted on two, exit
statuses and one-line errors, and docs/parallel.md's table equal to what the planner says
now. The runner is $INFD_RUN (default build/infd-run)."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import plan_table  # noqa: E402

RUNNER = os.environ.get("INFD_RUN", os.path.join(ROOT, "build/infd-run"))
CONFIGS = os.path.join(ROOT, "data", "hf_configs")
KEYS = {"fits", "weight_bytes_per_rank", "kv_cache_bytes_per_rank", "max_tokens_in_kv_cache",
        "activation_bytes_per_rank", "reserve_bytes", "tensor_parallel_size"}


@pytest.fixture(scope="module", autouse=True)
def runner():
    if not os.access(RUNNER, os.X_OK):
        pytest.fail(f"infd-run not found at {RUNNER} (build it or set INFD_RUN)")


def run(*args):
    return subprocess.run([RUNNER, "--plan", *args], capture_output=True, text=True)


def report(model, tp, memory="80GiB", *extra):
    p = run("--hf-config", os.path.join(CONFIGS, f"{model}.json"), "--tensor-parallel",
            str(tp), "--device-memory", memory, "--report", *extra)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_report_is_the_last_line_with_the_documented_keys():
    r = report("llama-2-7b", 1)
    assert KEYS <= r.keys()
    assert r["tensor_parallel_size"] == 1
    assert 13.4e9 < r["weight_bytes_per_rank"] < 13.55e9


def test_70b_fp16_needs_two_80gib_devices():
    one, two = report("llama-2-70b", 1), report("llama-2-70b", 2)
    assert not one["fits"] and one["max_tokens_in_kv_cache"] == 0
    assert two["fits"] and two["max_tokens_in_kv_cache"] >= 4096
    assert two["weight_bytes_per_rank"] * 2 >= one["weight_bytes_per_rank"]


def test_impossible_split_is_refused_with_one_line():
    p = run("--hf-config", os.path.join(CONFIGS, "llama-2-13b.json"), "--tensor-parallel", "3",
            "--device-memory", "80GiB")
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.count("\n") == 1 and "40 attention heads over 3 ranks" in p.stderr


@pytest.mark.parametrize("args", [["--device-memory", "80G"], ["--dtype", "fp8"], [],
                                  ["--tensor-parallel", "0"]])
def test_bad_usage_exits_2(args):
    base = ["--hf-config", os.path.join(CONFIGS, "llama-2-7b.json")]
    if "--device-memory" not in args and args != []:
        base += ["--device-memory", "80GiB"]
    p = run(*base, *args)
    assert p.returncode == 2 and p.stderr.startswith("infd-run: ")


def test_docs_table_matches_the_planner():
    with open(os.path.join(ROOT, "docs", "parallel.md")) as f:
        doc = f.read()
    current = plan_table.table(RUNNER, pathlib.Path(CONFIGS), "80GiB", "fp16")
    assert current in doc, "docs/parallel.md is stale: run scripts/plan_table.py --update"

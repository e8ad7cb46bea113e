"""Tensor parallelism on the CPU through infd-run: the BERT-like encoder that
scripts/export_bench_models.py writes (2 layers, 4 heads) run with --tensor-parallel 2 and
4 gives the outputs of the unsharded run (relative error <= 1e-5), costs 2 all-reduces
per layer and one for its word embedding (split by vocabulary), holds about 1/N of the
weights per rank, and is refused at 3 ranks (4 heads). The runner is
$INFD_RUN (default build/infd-run), the models $INFD_BENCH_MODELS (default build/bench);
the test is skipped when the encoder has not been exported (it needs PyTorch)."""
import json
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.environ.get("INFD_RUN", os.path.join(ROOT, "build/infd-run"))
ENCODER = os.path.join(os.environ.get("INFD_BENCH_MODELS", os.path.join(ROOT, "build/bench")),
                       "encoder")

pytestmark = pytest.mark.skipif(
    not os.path.exists(os.path.join(ENCODER, "model.onnx")),
    reason=f"no encoder at {ENCODER} (scripts/export_bench_models.py --models encoder)")


def run(tmp_path, *extra):
    out = tmp_path / ("tp" + "_".join(extra).replace("-", ""))
    cmd = [RUNNER, "--model", os.path.join(ENCODER, "model.onnx"), "--backend", "cpu",
           "--threads", "1", "--output-dir", str(out), "--report"]
    for i in range(2):
        cmd += ["--input", os.path.join(ENCODER, "b1", f"input_{i}.pb")]
    res = subprocess.run(cmd + list(extra), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    y = numpy_helper.to_array(onnx.load_tensor(str(out / "output_0.pb")))
    return report, y


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return run(tmp_path_factory.mktemp("ref"))


@pytest.mark.parametrize("ranks", [2, 4])
def test_same_outputs_as_one_rank(tmp_path, reference, ranks):
    ref_report, ref = reference
    report, y = run(tmp_path, "--tensor-parallel", str(ranks))
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(ref).max()
    assert report["tensor_parallel_size"] == ranks
    assert report["allreduce_per_forward"] == 5  # 2 layers x (attention + MLP) + embedding
    assert report["sharded"] == {"attention": 2, "mlp": 2, "embedding": 1, "lm_head": 0,
                                 "vocab_replicated": 0}
    per_rank = report["weight_bytes_per_rank"]
    assert len(per_rank) == ranks
    # the layers' matrices and the word embedding (30522 rows: 7631 per rank at TP 4) are
    # split; the position embedding, norms and row-parallel biases are not
    assert all(b < 1.02 * ref_report["weight_bytes"] / ranks for b in per_rank)
    assert per_rank[0] == report["weight_bytes"]


def test_heads_not_divisible_refused():
    res = subprocess.run([RUNNER, "--model", os.path.join(ENCODER, "model.onnx"),
                          "--backend", "cpu", "--tensor-parallel", "3", "--report"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert "cannot split 4 attention heads over 3 ranks" in res.stderr

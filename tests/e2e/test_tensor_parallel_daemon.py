"""test_tensor_parallel_daemon.py: a decoder language model (token embedding, RMSNorm from
ONNX ops, multi-head causal attention as PyTorch exports it, a SwiGLU MLP, an output layer
over the vocabulary) served by the daemon with "parallel": {"tensor_parallel_size": 2}
answers like the same model at TP 1 (relative error <= 1e-5), which answers like ONNX
Runtime; the load log says what was split and records the devices instance_group names;
requests with a wrong datatype, shape or token id get 400 and the next good request still
succeeds; splits that cannot be made (and bad "parallel" settings) leave the model
UNAVAILABLE with the reason. infd-run splits the same file over 4 ranks alike."""
import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import requests
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, Daemon, write_config

INFD_RUN = os.environ.get("INFD_RUN", os.path.join(ROOT, "build", "infd-run"))
SEQ, HIDDEN, HEADS, INNER, VOCAB = 6, 32, 4, 48, 96


def decoder_model(path):
    """ids [batch, SEQ] -> logits [batch, SEQ, VOCAB], one decoder layer."""
    rng = np.random.default_rng(5)
    inits, nodes = [], []

    def const(name, a):
        inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def mat(name, rows, cols):
        return const(name, (rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32))

    def op(kind, ins, out, **attrs):
        nodes.append(helper.make_node(kind, ins, [out], **attrs))
        return out

    def rms_norm(x, name):
        sq = op("Mul", [x, x], name + "_sq")
        mean = op("ReduceMean", [sq], name + "_mean", axes=[-1])
        var = op("Add", [mean, const(name + "_eps", np.float32(1e-5))], name + "_var")
        y = op("Div", [x, op("Sqrt", [var], name + "_root")], name + "_y")
        gamma = const(name + "_g", (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
        return op("Mul", [y, gamma], name + "_out")

    def linear(x, name, rows, cols, bias=False):
        y = op("MatMul", [x, mat(name + "_w", rows, cols)], name + "_mm")
        if bias:
            b = const(name + "_b", (0.1 * rng.standard_normal(cols)).astype(np.float32))
            y = op("Add", [y, b], name + "_out")
        return y

    def heads(x, name, perm):
        shape = const(name + "_shape", np.array([0, 0, HEADS, HIDDEN // HEADS], np.int64))
        return op("Transpose", [op("Reshape", [x, shape], name + "_r")], name + "_t", perm=perm)

    table = const("embed", rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32))
    x = op("Gather", [table, "input_ids"], "embedded")
    n = rms_norm(x, "ln1")
    q = heads(linear(n, "q", HIDDEN, HIDDEN, True), "q", [0, 2, 1, 3])
    k = heads(linear(n, "k", HIDDEN, HIDDEN, True), "k", [0, 2, 3, 1])
    v = heads(linear(n, "v", HIDDEN, HIDDEN, True), "v", [0, 2, 1, 3])
    scores = op("Div", [op("MatMul", [q, k], "qk"),
                        const("scale", np.float32(np.sqrt(HIDDEN // HEADS)))], "scores")
    causal = np.triu(np.full((SEQ, SEQ), -1e9, np.float32), 1)[None, None]
    probs = op("Softmax", [op("Add", [scores, const("mask", causal)], "masked")], "probs",
               axis=-1)
    ctx = op("Transpose", [op("MatMul", [probs, v], "ctx")], "ctx_t", perm=[0, 2, 1, 3])
    ctx = op("Reshape", [ctx, const("ctx_shape", np.array([0, 0, HIDDEN], np.int64))], "ctx_r")
    x = op("Add", [x, linear(ctx, "o", HIDDEN, HIDDEN)], "h1")
    n = rms_norm(x, "ln2")
    gate, up = linear(n, "gate", HIDDEN, INNER), linear(n, "up", HIDDEN, INNER)
    silu = op("Mul", [gate, op("Sigmoid", [gate], "gate_sig")], "silu")
    x = op("Add", [x, linear(op("Mul", [silu, up], "swiglu"), "down", INNER, HIDDEN)], "h2")
    nodes.append(helper.make_node("MatMul", [rms_norm(x, "ln3"), mat("lm_head", HIDDEN, VOCAB)],
                                  ["logits"]))
    graph = helper.make_graph(
        nodes, "decoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", SEQ])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", SEQ, VOCAB])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def add_decoder(repo, name, extra):
    decoder_model(os.path.join(repo, name, "1", "model.onnx"))
    write_config(os.path.join(repo, name), {
        "name": name, "max_batch_size": 4,
        "input": [{"name": "input_ids", "data_type": "TYPE_INT64", "dims": [SEQ]}],
        "output": [{"name": "logits", "data_type": "TYPE_FP32", "dims": [SEQ, VOCAB]}],
        **extra})


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    repo = str(tmp_path_factory.mktemp("tp") / "models")
    add_decoder(repo, "tp1", {})
    add_decoder(repo, "tp2", {"parallel": {"tensor_parallel_size": 2},
                              "instance_group": [{"count": 1, "kind": "KIND_CPU"}]})
    add_decoder(repo, "tp2_gpus", {"parallel": {"tensor_parallel_size": 2},
                                   "instance_group": [{"kind": "KIND_GPU", "gpus": [1, 0]}]})
    add_decoder(repo, "tp3", {"parallel": {"tensor_parallel_size": 3}})
    add_decoder(repo, "tp2_three_gpus", {"parallel": {"tensor_parallel_size": 2},
                                         "instance_group": [{"kind": "KIND_GPU",
                                                             "gpus": [0, 1, 2]}]})
    add_decoder(repo, "tp2_same_gpu", {"parallel": {"tensor_parallel_size": 2},
                                       "instance_group": [{"kind": "KIND_GPU", "gpus": [0, 0]}]})
    add_decoder(repo, "tp2_typo", {"parallel": {"tensor_parallel_size": 2, "pipeline": 2}})
    d = Daemon(repo)
    yield d
    d.stop()


def infer(base, model, ids, datatype="INT64", shape=None):
    body = {"inputs": [{"name": "input_ids", "datatype": datatype,
                        "shape": list(shape or ids.shape), "data": ids.ravel().tolist()}]}
    return requests.post(f"{base}/v2/models/{model}/infer", json=body, timeout=60)


def logits(base, model, ids):
    r = infer(base, model, ids)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    return np.array(out["data"], np.float32).reshape(out["shape"])


def token_ids(seed, rows=3):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(rows, SEQ)).astype(np.int64)


def assert_same(got, want):
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()


def test_tp2_answers_like_tp1_and_onnxruntime(daemon, tmp_path):
    ids = token_ids(1)
    want = logits(daemon.base, "tp1", ids)
    decoder_model(str(tmp_path / "decoder.onnx"))
    ref = ort.InferenceSession(str(tmp_path / "decoder.onnx")).run(None, {"input_ids": ids})[0]
    np.testing.assert_allclose(want, ref, rtol=1e-4, atol=1e-4)
    assert_same(logits(daemon.base, "tp2", ids), want)
    cfg = requests.get(f"{daemon.base}/v2/models/tp2/config", timeout=10).json()
    assert cfg["parallel"] == {"tensor_parallel_size": 2}
    assert "parallel" not in requests.get(f"{daemon.base}/v2/models/tp1/config",
                                          timeout=10).json()
    line = next(l for l in daemon.logs().splitlines() if "model 'tp2' version 1: tensor" in l)
    assert ("tensor-parallel over 2 CPU ranks: 1 attention and 1 MLP blocks split, "
            "1 embedding(s) and 1 output layer(s) split by vocabulary, 0 left whole") in line
    assert "3 all-reduce(s) and 1 all-gather(s) per forward" in line
    # devices named per rank are recorded; the ranks run on the CPU for now
    line = next(l for l in daemon.logs().splitlines() if "model 'tp2_gpus' version 1: t" in l)
    assert "over 2 CPU ranks (gpus [1, 0] recorded: execution over NCCL" in line
    assert_same(logits(daemon.base, "tp2_gpus", ids), want)


def test_bad_requests_do_not_break_the_ranks(daemon):
    ids = token_ids(2)
    want = logits(daemon.base, "tp1", ids)
    r = infer(daemon.base, "tp2", ids.astype(np.float32), datatype="FP32")
    assert r.status_code == 400 and "datatype" in r.json()["error"]
    r = infer(daemon.base, "tp2", ids[:, :-1])
    assert r.status_code == 400 and "shape" in r.json()["error"]
    bad = ids.copy()
    bad[1, 2] = VOCAB  # runs on the ranks and fails in the embedding lookup
    r = infer(daemon.base, "tp2", bad)
    assert r.status_code == 400
    assert f"index {VOCAB} is out of range for dim {VOCAB}" in r.json()["error"]
    for _ in range(2):
        assert_same(logits(daemon.base, "tp2", ids), want)


@pytest.mark.parametrize("model,reason", [
    ("tp3", "cannot split 4 attention heads over 3 ranks: attention splits by heads"),
    ("tp2_three_gpus", "parallel.tensor_parallel_size is 2 but instance_group names 3 gpus"),
    ("tp2_same_gpu", "instance_group names gpu 0 twice (one device cannot host two ranks)"),
    ("tp2_typo", "parallel: unknown field 'pipeline'"),
])
def test_impossible_splits_are_unavailable(daemon, model, reason):
    r = requests.get(f"{daemon.base}/v2/models/{model}/ready", timeout=10)
    assert r.status_code == 400
    assert reason in r.json()["error"]
    assert logits(daemon.base, "tp1", token_ids(3)).shape == (3, SEQ, VOCAB)


def run_infd(model, out_dir, *extra):
    ids = os.path.join(os.path.dirname(out_dir), "ids.pb")
    with open(ids, "wb") as f:
        f.write(numpy_helper.from_array(token_ids(4, rows=2), "input_ids").SerializeToString())
    res = subprocess.run([INFD_RUN, "--model", model, "--backend", "cpu", "--threads", "1",
                          "--input", ids, "--output-dir", out_dir, "--report", *extra],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    y = numpy_helper.to_array(onnx.load_tensor(os.path.join(out_dir, "output_0.pb")))
    return json.loads(res.stdout.strip().splitlines()[-1]), y


def test_infd_run_four_ranks(tmp_path):
    model = str(tmp_path / "decoder.onnx")
    decoder_model(model)
    ref_report, ref = run_infd(model, str(tmp_path / "tp1"))
    report, y = run_infd(model, str(tmp_path / "tp4"), "--tensor-parallel", "4")
    assert_same(y, ref)
    assert report["allreduce_per_forward"] == 3  # embedding, attention, MLP
    assert report["allgather_per_forward"] == 1  # the logits
    assert report["sharded"] == {"attention": 1, "mlp": 1, "embedding": 1, "lm_head": 1,
                                 "vocab_replicated": 0}
    assert max(report["weight_bytes_per_rank"]) < ref_report["weight_bytes"] / 3

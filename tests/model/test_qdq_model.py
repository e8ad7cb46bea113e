"""A small QDQ model (QuantizeLinear / DequantizeLinear around MatMul and Gemm, as ONNX
Runtime's quantizer writes them) built with the onnx package and run by infd-run
($INFD_RUN, default build/infd-run): the dequantized INT8 weights become infd.QLinear nodes
that keep them as INT8 (weight_bytes about a quarter of the F32 model's), and the outputs
match the QDQ semantics computed with numpy, and onnxruntime's."""
import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNER = os.environ.get("INFD_RUN", os.path.join(ROOT, "build/infd-run"))
K, N1, N2 = 64, 48, 10


def quantize(x, scale, zero, lo, hi):
    """ONNX QuantizeLinear: round half to even, then saturate."""
    return np.clip(np.rint(x / scale) + zero, lo, hi)


def build(rng, z1=0):
    """x (batch, K) -> Q/DQ (uint8, per tensor) -> MatMul by DQ(int8 W1 about z1, per
    column) -> Add b1 -> Relu -> Gemm(transB) by DQ(uint8 W2 about 128, per tensor) + b2."""
    w1 = rng.standard_normal((K, N1)).astype(np.float32)
    s1 = (np.abs(w1).max(axis=0) / 100).astype(np.float32)
    q1 = quantize(w1, s1, z1, -128, 127).astype(np.int8)
    w2 = rng.standard_normal((N2, N1)).astype(np.float32)
    s2 = np.float32(np.abs(w2).max() / 127)
    q2 = quantize(w2, s2, 128, 0, 255).astype(np.uint8)
    b1 = rng.standard_normal(N1).astype(np.float32)
    b2 = rng.standard_normal(N2).astype(np.float32)
    inits = {
        "x_scale": np.float32(0.03), "x_zero": np.uint8(120),
        "q1": q1, "s1": s1, "z1": np.full(N1, z1, np.int8), "b1": b1,
        "q2": q2, "s2": s2, "z2": np.uint8(128), "b2": b2,
    }
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "x_scale", "x_zero"], ["xd"]),
        helper.make_node("DequantizeLinear", ["q1", "s1", "z1"], ["w1"], axis=1),
        helper.make_node("MatMul", ["xd", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h"]),
        helper.make_node("DequantizeLinear", ["q2", "s2", "z2"], ["w2"]),
        helper.make_node("Gemm", ["h", "w2", "b2"], ["y"], transB=1),
    ]
    graph = helper.make_graph(
        nodes, "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N2])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model, inits


def reference(x, p):
    xd = (quantize(x, p["x_scale"], 120, 0, 255) - 120) * p["x_scale"]
    w1 = (p["q1"].astype(np.float32) - p["z1"]) * p["s1"]
    h = np.maximum(xd @ w1 + p["b1"], 0)
    w2 = (p["q2"].astype(np.float32) - 128) * p["s2"]
    return h @ w2.T + p["b2"]


def run_model(tmp, z1):
    if not os.access(RUNNER, os.X_OK):
        pytest.fail(f"infd-run not found at {RUNNER} (build it or set INFD_RUN)")
    rng = np.random.default_rng(7)
    model, params = build(rng, z1)
    path = str(tmp / "model.onnx")
    onnx.save(model, path)
    x = rng.standard_normal((5, K)).astype(np.float32) * 2
    onnx.save_tensor(numpy_helper.from_array(x), str(tmp / "x.pb"))
    proc = subprocess.run([RUNNER, "--model", path, "--input", str(tmp / "x.pb"), "--threads", "2",
                           "--output-dir", str(tmp), "--report"],
                          capture_output=True, text=True, check=True)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    y = numpy_helper.to_array(onnx.load_tensor(str(tmp / "output_0.pb")))
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return {"report": report, "y": y, "ref": reference(x, params),
            "ort": sess.run(None, {"x": x})[0], "params": params}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_model(tmp_path_factory.mktemp("qdq"), 0)


def test_weights_stay_int8(run):
    report = run["report"]
    assert report["nodes"].get("infd.QLinear") == 2
    assert report["fusions"].get("qdq_linear") == 2
    assert report["fusions"].get("linear_activation") == 1  # the Relu joins the first QLinear
    assert "MatMul" not in report["nodes"] and "Gemm" not in report["nodes"]
    # INT8 weights, F32 scales and biases: nothing was widened to an F32 copy of a weight
    int8 = K * N1 + N2 * N1
    f32_small = 4 * (N1 + N1 + N2 + 1 + 2 * N2)
    assert report["weight_bytes"] <= int8 + f32_small + 64
    assert report["weight_bytes"] < 4 * int8 / 3


def test_matches_qdq_semantics(run):
    np.testing.assert_allclose(run["y"], run["ref"], rtol=1e-4, atol=1e-4)


def test_matches_onnxruntime(run):
    np.testing.assert_allclose(run["y"], run["ort"], rtol=1e-4, atol=1e-4)


def test_zero_point_other_than_zero(tmp_path):
    """W1 with zero point 3 has no symmetric INT8 form: it is folded to F32 as any constant
    (only W2 becomes QLinear), and the result is still the QDQ one."""
    r = run_model(tmp_path, 3)
    assert r["report"]["fusions"].get("qdq_linear") == 1
    assert r["report"]["nodes"].get("infd.Linear") == 1
    np.testing.assert_allclose(r["y"], r["ref"], rtol=1e-4, atol=1e-4)

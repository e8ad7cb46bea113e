"""test_kserve.py: the KServe v2 API of infd driven by the official tritonclient and by
curl: health, metadata, config, repository index, statistics, inference for every served
datatype in JSON and binary, and every bad input with its status and message."""
import json
import subprocess

import numpy as np
import pytest
import requests
import tritonclient.http as th
from tritonclient.utils import InferenceServerException

from conftest import ADD_TYPES, TYPES


@pytest.fixture(scope="module")
def client(server):
    return th.InferenceServerClient(server.url)


def curl(server, path, data=None, method=None):
    """(status, parsed body or None) from curl."""
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", server.base + path]
    if data is not None:
        cmd += ["-H", "Content-Type: application/json", "--data-binary", data]
    if method:
        cmd += ["-X", method]
    out = subprocess.run(cmd, capture_output=True, check=True, timeout=30).stdout.decode()
    body, status = out.rsplit("\n", 1)
    return int(status), (json.loads(body) if body else None)


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "infd"
    assert "binary_tensor_data" in meta["extensions"]
    assert client.is_model_ready("add_fp32")
    assert not client.is_model_ready("broken")
    md = client.get_model_metadata("add_fp32")
    assert md["versions"] == ["1"]
    assert md["inputs"][0] == {"name": "INPUT0", "datatype": "FP32", "shape": [-1, 4]}
    assert [o["name"] for o in md["outputs"]] == ["OUTPUT0", "OUTPUT1"]


def test_config_and_completed_config(client):
    cfg = client.get_model_config("batched")
    assert cfg["max_batch_size"] == 64
    assert cfg["dynamic_batching"]["preferred_batch_size"] == [16, 32, 64]
    assert cfg["instance_group"][0]["count"] == 2
    # no config.json: inputs/outputs come from the ONNX model, max_batch_size 0
    nc = client.get_model_config("noconfig")
    assert nc["max_batch_size"] == 0
    assert [i["name"] for i in nc["input"]] == ["INPUT0", "INPUT1"]
    assert nc["input"][0]["data_type"] == "TYPE_FP32"
    assert client.get_model_metadata("noconfig")["inputs"][0]["shape"] == [-1, 4]


def test_versions(client, server):
    assert client.get_model_metadata("versioned")["versions"] == ["3"]
    assert client.is_model_ready("versioned", "3")
    status, body = curl(server, "/v2/models/versioned/versions/1")
    assert status == 404 and "unknown version '1'" in body["error"]


def test_repository_index(client):
    index = {e["name"]: e for e in client.get_model_repository_index()}
    assert index["add_fp32"]["state"] == "READY"
    assert index["broken"]["state"] == "UNAVAILABLE"
    assert "not a valid ONNX" in index["broken"]["reason"] or index["broken"]["reason"]


def _pair(dtype, shape=(2, 4)):
    np_t = TYPES[dtype][1]
    a = (np.arange(np.prod(shape)) % 100).reshape(shape).astype(np_t)
    b = np.full(shape, 3, dtype=np_t)
    return a, b


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("dtype", ADD_TYPES)
def test_infer_numeric(client, dtype, binary):
    if dtype == "FP16" and not binary:
        pytest.skip("FP16 travels only as binary data (as in Triton)")
    a, b = _pair(dtype)
    inputs = []
    for name, x in (("INPUT0", a), ("INPUT1", b)):
        i = th.InferInput(name, list(x.shape), dtype)
        i.set_data_from_numpy(x, binary_data=binary)
        inputs.append(i)
    outputs = [th.InferRequestedOutput("OUTPUT0", binary_data=binary),
               th.InferRequestedOutput("OUTPUT1", binary_data=binary)]
    r = client.infer("add_" + dtype.lower(), inputs, outputs=outputs, request_id="r1")
    np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(r.as_numpy("OUTPUT1"), a)
    assert r.get_response()["id"] == "r1"


def test_infer_default_outputs_are_binary(client):
    a, b = _pair("FP32")
    inputs = [th.InferInput("INPUT0", [2, 4], "FP32"), th.InferInput("INPUT1", [2, 4], "FP32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    r = client.infer("add_fp32", inputs)
    np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), a + b)
    assert r.get_output("OUTPUT0")["parameters"]["binary_data_size"] == 32


def test_infer_output_selection(client):
    a, b = _pair("FP32")
    inputs = [th.InferInput("INPUT0", [2, 4], "FP32"), th.InferInput("INPUT1", [2, 4], "FP32")]
    inputs[0].set_data_from_numpy(a, binary_data=False)
    inputs[1].set_data_from_numpy(b, binary_data=False)
    r = client.infer("add_fp32", inputs, outputs=[th.InferRequestedOutput("OUTPUT1", binary_data=False)])
    assert [o["name"] for o in r.get_response()["outputs"]] == ["OUTPUT1"]
    assert r.as_numpy("OUTPUT0") is None


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_bytes(client, binary):
    x = np.array([[b"a", b"bc", b""], [b"longer string", b"x", b"yz"]], dtype=np.object_)
    i = th.InferInput("INPUT0", [2, 3], "BYTES")
    i.set_data_from_numpy(x, binary_data=binary)
    r = client.infer("identity_bytes", [i], outputs=[th.InferRequestedOutput("OUTPUT0", binary_data=binary)])
    out = r.as_numpy("OUTPUT0")
    got = [[v if isinstance(v, bytes) else v.encode() for v in row] for row in out]
    assert got == x.tolist()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_bool(client, binary):
    x = np.array([[True, False, True], [False, False, True]])
    i = th.InferInput("INPUT0", [2, 3], "BOOL")
    i.set_data_from_numpy(x, binary_data=binary)
    r = client.infer("identity_bool", [i], outputs=[th.InferRequestedOutput("OUTPUT0", binary_data=binary)])
    np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)


def test_nan_and_inf_are_values(server):
    body = ('{"inputs":[{"name":"INPUT0","shape":[1,4],"datatype":"FP32","data":[NaN,Infinity,-Infinity,1]},'
            '{"name":"INPUT1","shape":[1,4],"datatype":"FP32","data":[1,1,1,1]}],'
            '"outputs":[{"name":"OUTPUT0"}]}')
    r = requests.post(server.base + "/v2/models/add_fp32/infer", data=body)
    assert r.status_code == 200
    data = r.json()["outputs"][0]["data"]  # Python's json reads NaN / Infinity
    assert np.isnan(data[0]) and data[1] == np.inf and data[2] == -np.inf and data[3] == 2


def test_statistics(client):
    stats = client.get_inference_statistics("add_int32")["model_stats"][0]
    assert stats["name"] == "add_int32" and stats["version"] == "1"
    assert stats["inference_count"] >= 2 and stats["execution_count"] >= 1
    assert stats["inference_stats"]["success"]["count"] >= 1
    all_stats = client.get_inference_statistics()["model_stats"]
    assert {"add_fp32", "batched"} <= {s["name"] for s in all_stats}


def test_curl_json(server):
    assert curl(server, "/v2/health/ready")[0] == 200
    status, md = curl(server, "/v2/models/add_int64")
    assert status == 200 and md["inputs"][0]["datatype"] == "INT64"
    status, cfg = curl(server, "/v2/models/add_int64/config")
    assert status == 200 and cfg["name"] == "add_int64"
    body = json.dumps({"inputs": [
        {"name": "INPUT0", "shape": [1, 4], "datatype": "INT64", "data": [[1, 2, 3, 4]]},
        {"name": "INPUT1", "shape": [1, 4], "datatype": "INT64", "data": [10, 20, 30, 2**40]}]})
    status, out = curl(server, "/v2/models/add_int64/infer", body)
    assert status == 200
    assert out["outputs"][0]["data"] == [11, 22, 33, 4 + 2**40]
    assert out["outputs"][0]["shape"] == [1, 4]
    status, stats = curl(server, "/v2/models/add_int64/stats")
    assert status == 200 and stats["model_stats"][0]["inference_count"] >= 1
    status, idx = curl(server, "/v2/repository/index", "{}")
    assert status == 200 and any(e["name"] == "noconfig" for e in idx)


def _inp(name="INPUT0", shape=(1, 4), dtype="FP32", data=(1, 2, 3, 4), **extra):
    d = {"name": name, "shape": list(shape), "datatype": dtype, "data": list(data)}
    d.update(extra)
    return d


GOOD1 = _inp("INPUT1")

BAD_JSON = [
    ("malformed", "{not json", 400, "malformed JSON"),
    ("not-object", "[1,2]", 400, "must be a JSON object"),
    ("no-inputs", "{}", 400, "no 'inputs'"),
    ("unknown-input", {"inputs": [_inp("NOPE"), GOOD1]}, 400, "unknown input 'NOPE'"),
    ("missing-input", {"inputs": [GOOD1]}, 400, "missing input 'INPUT0'"),
    ("wrong-datatype", {"inputs": [_inp(dtype="INT32"), GOOD1]}, 400,
     "datatype INT32 does not match the model's FP32"),
    ("count-mismatch", {"inputs": [_inp(data=(1, 2, 3)), GOOD1]}, 400,
     "has 4 elements but data has 3"),
    ("non-number", {"inputs": [_inp(data=(1, "x", 3, 4)), GOOD1]}, 400,
     "element 1 is not a number"),
    ("negative-dim", {"inputs": [_inp(shape=(-1, 4)), GOOD1]}, 400, "negative dimension"),
    ("batch-too-big", {"inputs": [_inp(shape=(9, 4), data=[0] * 36), _inp("INPUT1", (9, 4), data=[0] * 36)]},
     400, "max_batch_size 8"),
    ("wrong-shape", {"inputs": [_inp(shape=(1, 5), data=[0] * 5), GOOD1]}, 400,
     "does not match the model's [-1,4]"),
    ("unknown-output", {"inputs": [_inp(), GOOD1], "outputs": [{"name": "NOPE"}]}, 400,
     "unknown output 'NOPE'"),
    ("int-out-of-range", None, 400, "out of range for UINT8"),
    ("fp16-json", None, 400, "FP16 is only supported as binary data"),
]


@pytest.mark.parametrize("case", BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_json_requests(server, case):
    name, body, status, message = case
    model = "add_fp32"
    if name == "int-out-of-range":
        model = "add_uint8"
        body = {"inputs": [_inp(dtype="UINT8", data=(1, 2, 3, 256)), _inp("INPUT1", dtype="UINT8")]}
    if name == "fp16-json":
        model = "add_fp16"
        body = {"inputs": [_inp(dtype="FP16"), _inp("INPUT1", dtype="FP16")]}
    data = body if isinstance(body, str) else json.dumps(body)
    r = requests.post(server.base + "/v2/models/%s/infer" % model, data=data)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def _binary_request(header, payload):
    h = json.dumps(header).encode()
    return h + payload, {"Inference-Header-Content-Length": str(len(h)),
                         "Content-Type": "application/octet-stream"}


def test_binary_data_size_beyond_body(server):
    header = {"inputs": [
        {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
        {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}]}
    body, headers = _binary_request(header, np.zeros(6, np.float32).tobytes())
    r = requests.post(server.base + "/v2/models/add_fp32/infer", data=body, headers=headers)
    assert r.status_code == 400
    assert "binary_data_size 16 goes past the end of the body" in r.json()["error"]


def test_binary_header_length_beyond_body(server):
    r = requests.post(server.base + "/v2/models/add_fp32/infer", data=b"{}",
                      headers={"Inference-Header-Content-Length": "100"})
    assert r.status_code == 400 and "exceeds the body size" in r.json()["error"]


def test_binary_bytes_truncated(server):
    header = {"inputs": [{"name": "INPUT0", "shape": [1, 3], "datatype": "BYTES",
                          "parameters": {"binary_data_size": 6}}]}
    body, headers = _binary_request(header, b"\x01\x00\x00\x00a\x09")
    r = requests.post(server.base + "/v2/models/identity_bytes/infer", data=body, headers=headers)
    assert r.status_code == 400 and "truncated length prefix" in r.json()["error"]


def test_binary_raw_roundtrip(server):
    a = np.arange(4, dtype=np.float32).reshape(1, 4)
    header = {"inputs": [
        {"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}},
        {"name": "INPUT1", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 16}}],
        "outputs": [{"name": "OUTPUT0", "parameters": {"binary_data": True}}]}
    body, headers = _binary_request(header, a.tobytes() + (a * 2).tobytes())
    r = requests.post(server.base + "/v2/models/add_fp32/infer", data=body, headers=headers)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/octet-stream"
    n = int(r.headers["Inference-Header-Content-Length"])
    meta = json.loads(r.content[:n])
    assert meta["outputs"][0]["parameters"]["binary_data_size"] == 16
    np.testing.assert_array_equal(np.frombuffer(r.content[n:], np.float32), (a * 3).ravel())


ROUTES = [
    ("unknown-model", "POST", "/v2/models/nope/infer", 404, "unknown model 'nope'"),
    ("unknown-version", "POST", "/v2/models/add_fp32/versions/7/infer", 404, "unknown version '7'"),
    ("dotdot-name", "POST", "/v2/models/..%2Fetc/infer", 400, "invalid model name"),
    ("slash-name", "GET", "/v2/models/a%2Fb/ready", 400, "invalid model name"),
    ("get-on-infer", "GET", "/v2/models/add_fp32/infer", 405, "use POST"),
    ("post-on-metadata", "POST", "/v2/models/add_fp32", 405, "use GET"),
    ("unknown-route", "GET", "/v2/nothing/here", 404, "no route"),
    ("unavailable-model", "POST", "/v2/models/broken/infer", 503, "not ready"),
]


@pytest.mark.parametrize("case", ROUTES, ids=[c[0] for c in ROUTES])
def test_route_errors(server, case):
    _, method, path, status, message = case
    # raw path (requests would normalize '..')
    r = requests.Session().send(requests.Request(method, server.base + path, data="{}").prepare())
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_request_too_large(repo):
    from conftest import Daemon
    d = Daemon(repo, ["--max-request-bytes", "2048"])
    try:
        big = json.dumps({"inputs": [_inp(data=[0.0] * 2000)]})
        r = requests.post(d.base + "/v2/models/add_fp32/infer", data=big)
        assert r.status_code == 413 and "exceeds the limit of 2048 bytes" in r.json()["error"]

        def chunks():  # no Content-Length: detected while reading
            for _ in range(10):
                yield b" " * 1000
        r = requests.post(d.base + "/v2/models/add_fp32/infer", data=chunks())
        assert r.status_code == 413 and "exceeds the limit" in r.json()["error"]
        assert requests.get(d.base + "/v2/health/live").status_code == 200
    finally:
        d.stop()

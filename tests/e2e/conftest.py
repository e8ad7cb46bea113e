"""conftest.py: fixtures for the end-to-end tests: a model repository built at test time
with the onnx package, and infd started on 127.0.0.1 on a free port (INFD_BIN, default
build/infd; INFD_BACKEND, when set, its --backend: make test-gpu runs the tests on cuda),
waited for by polling /v2/health/ready with a deadline."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import numpy as np
import onnx
import pytest
import requests
from onnx import TensorProto, helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INFD_BIN = os.environ.get("INFD_BIN", os.path.join(ROOT, "build", "infd"))
BACKEND_ARGS = ["--backend", os.environ["INFD_BACKEND"]] if os.environ.get("INFD_BACKEND") else []

# KServe datatype -> (ONNX element type, numpy dtype, Triton config type)
TYPES = {
    "FP32": (TensorProto.FLOAT, np.float32, "TYPE_FP32"),
    "FP16": (TensorProto.FLOAT16, np.float16, "TYPE_FP16"),
    "INT64": (TensorProto.INT64, np.int64, "TYPE_INT64"),
    "INT32": (TensorProto.INT32, np.int32, "TYPE_INT32"),
    "UINT8": (TensorProto.UINT8, np.uint8, "TYPE_UINT8"),
    "BOOL": (TensorProto.BOOL, np.bool_, "TYPE_BOOL"),
    "BYTES": (TensorProto.STRING, np.object_, "TYPE_STRING"),
}
ADD_TYPES = ["FP32", "FP16", "INT64", "INT32", "UINT8"]
IDENTITY_TYPES = ["BOOL", "BYTES"]


def save_model(path, nodes, inputs, outputs):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def add_model(path, dtype, width=4):
    """OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = Identity(INPUT0), shapes [batch, width]."""
    et = TYPES[dtype][0]
    vi = lambda n: helper.make_tensor_value_info(n, et, ["batch", width])
    save_model(path,
               [helper.make_node("Add", ["INPUT0", "INPUT1"], ["OUTPUT0"]),
                helper.make_node("Identity", ["INPUT0"], ["OUTPUT1"])],
               [vi("INPUT0"), vi("INPUT1")], [vi("OUTPUT0"), vi("OUTPUT1")])


def identity_model(path, dtype, width=3):
    et = TYPES[dtype][0]
    save_model(path, [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])],
               [helper.make_tensor_value_info("INPUT0", et, ["batch", width])],
               [helper.make_tensor_value_info("OUTPUT0", et, ["batch", width])])


def io_config(names, dtype, width):
    return [{"name": n, "data_type": TYPES[dtype][2], "dims": [width]} for n in names]


def write_config(model_dir, cfg):
    os.makedirs(model_dir, exist_ok=True)
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(cfg, f)


def build_repository(root):
    """Every model the tests use; returns root."""
    for t in ADD_TYPES:
        name = "add_" + t.lower()
        add_model(os.path.join(root, name, "1", "model.onnx"), t)
        write_config(os.path.join(root, name), {
            "name": name, "backend": "onnx", "max_batch_size": 8,
            "input": io_config(["INPUT0", "INPUT1"], t, 4),
            "output": io_config(["OUTPUT0", "OUTPUT1"], t, 4),
            "dynamic_batching": {}})
    for t in IDENTITY_TYPES:
        name = "identity_" + t.lower()
        identity_model(os.path.join(root, name, "1", "model.onnx"), t)
        write_config(os.path.join(root, name), {
            "name": name, "max_batch_size": 8,
            "input": io_config(["INPUT0"], t, 3), "output": io_config(["OUTPUT0"], t, 3)})
    # dynamic batching: a short delay so concurrent requests meet in one batch
    add_model(os.path.join(root, "batched", "1", "model.onnx"), "FP32")
    write_config(os.path.join(root, "batched"), {
        "max_batch_size": 64, "instance_group": [{"count": 2, "kind": "KIND_CPU"}],
        "dynamic_batching": {"preferred_batch_size": [16, 32, 64],
                             "max_queue_delay_microseconds": 20000}})
    # requests wait 5 s for company: a small queue fills, a queue timeout expires
    add_model(os.path.join(root, "slowq", "1", "model.onnx"), "FP32")
    write_config(os.path.join(root, "slowq"), {
        "max_batch_size": 8,
        "dynamic_batching": {"max_queue_delay_microseconds": 5000000,
                             "default_queue_policy": {"max_queue_size": 2}}})
    add_model(os.path.join(root, "timeoutq", "1", "model.onnx"), "FP32")
    write_config(os.path.join(root, "timeoutq"), {
        "max_batch_size": 8,
        "dynamic_batching": {"max_queue_delay_microseconds": 5000000,
                             "default_queue_policy": {"default_timeout_microseconds": 100000,
                                                      "timeout_action": "REJECT"}}})
    # no config.json: completed from the model, max_batch_size 0
    add_model(os.path.join(root, "noconfig", "1", "model.onnx"), "FP32")
    # two versions: the highest is served
    for v in ("1", "3"):
        add_model(os.path.join(root, "versioned", v, "model.onnx"), "FP32")
    # a model that cannot load: UNAVAILABLE, the others keep serving
    os.makedirs(os.path.join(root, "broken", "1"))
    with open(os.path.join(root, "broken", "1", "model.onnx"), "wb") as f:
        f.write(b"this is not an onnx model")
    return root


def copy_spam(repo, name, infd_fields):
    """REPO/NAME: models/spam's ONNX file and config, renamed, with infd_fields added to
    its "infd" object."""
    src = os.path.join(ROOT, "models", "spam")
    dst = os.path.join(repo, name)
    os.makedirs(os.path.join(dst, "1"))
    shutil.copy(os.path.join(src, "1", "model.onnx"), os.path.join(dst, "1", "model.onnx"))
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["name"] = name
    cfg["infd"].update(infd_fields)
    write_config(dst, cfg)


def spam_probabilities(base, model, x):
    """A spam model's spam_probability for the feature rows x, over JSON."""
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": list(x.shape),
                        "data": x.ravel().tolist()}],
            "outputs": [{"name": "spam_probability"}]}
    r = requests.post(f"{base}/v2/models/{model}/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return np.array(r.json()["outputs"][0]["data"], dtype=np.float32)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, repo, extra=()):
        self.port = free_port()
        self.url = "127.0.0.1:%d" % self.port
        self.base = "http://" + self.url
        self.log = open(os.path.join(repo, "..", "infd-%d.log" % self.port), "w+")
        self.proc = subprocess.Popen(
            [INFD_BIN, "--model-repository", repo, "--http-port", str(self.port),
             "--exit-timeout-secs", "20", *BACKEND_ARGS, *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.wait_ready()

    def wait_ready(self, deadline_s=60):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("infd exited with %s: %s" % (self.proc.returncode, self.logs()))
            try:
                if requests.get(self.base + "/v2/health/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError("infd not ready in %ds: %s" % (deadline_s, self.logs()))

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    return build_repository(str(tmp_path_factory.mktemp("repo") / "models"))


@pytest.fixture(scope="session")
def server(repo):
    d = Daemon(repo)
    yield d
    d.stop()


@pytest.fixture
def fresh_repo(tmp_path):
    """A private copy of the repository for tests that stop or reconfigure the daemon."""
    return build_repository(str(tmp_path / "models"))

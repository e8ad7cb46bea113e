"""test_instance_placement.py: instance_group placement in the daemon. A KIND_GPU model on
a host without a CUDA device (or naming a GPU index the host does not have) is UNAVAILABLE
with the reason, in /ready and in the repository index, while KIND_CPU and KIND_AUTO models
beside it load and answer. On a host with devices the KIND_GPU model without gpus loads and
the one naming a missing index is still refused, naming it."""
import os
import re
import subprocess

import numpy as np
import pytest
import requests

from conftest import INFD_BIN, Daemon, add_model, io_config, write_config


def visible_devices():
    """CUDA devices infd sees, from `infd --version` (0 without CUDA support)."""
    out = subprocess.run([INFD_BIN, "--version"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"(\d+) devices? visible", out)
    return int(m.group(1)) if m else 0


def add(repo, name, groups):
    add_model(os.path.join(repo, name, "1", "model.onnx"), "FP32")
    write_config(os.path.join(repo, name), {
        "max_batch_size": 8, "instance_group": groups,
        "input": io_config(["INPUT0", "INPUT1"], "FP32", 4),
        "output": io_config(["OUTPUT0", "OUTPUT1"], "FP32", 4)})


@pytest.fixture(scope="module")
def placed(tmp_path_factory):
    n = visible_devices()
    repo = str(tmp_path_factory.mktemp("placement") / "models")
    add(repo, "gpu_any", [{"count": 1, "kind": "KIND_GPU"}])
    add(repo, "gpu_missing", [{"kind": "KIND_CPU"}, {"kind": "KIND_GPU", "gpus": [n]}])
    add(repo, "cpu_two", [{"count": 2, "kind": "KIND_CPU"}])
    add(repo, "auto_one", [{"kind": "KIND_AUTO"}])
    d = Daemon(repo)
    yield d, n
    d.stop()


def infer(base, model, a, b):
    body = {"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": list(a.shape),
                        "data": a.ravel().tolist()},
                       {"name": "INPUT1", "datatype": "FP32", "shape": list(b.shape),
                        "data": b.ravel().tolist()}]}
    return requests.post(f"{base}/v2/models/{model}/infer", json=body, timeout=30)


def reason(base, model):
    r = requests.get(f"{base}/v2/models/{model}/ready", timeout=10)
    assert r.status_code == 400, r.text
    return r.json()["error"]


def test_gpu_model_without_its_device_is_unavailable(placed):
    d, n = placed
    if n == 0:
        assert "instance_group[0] is KIND_GPU but no CUDA device is visible" in \
            reason(d.base, "gpu_any")
        why = "instance_group[1] is KIND_GPU but no CUDA device is visible"
    else:
        assert requests.get(f"{d.base}/v2/models/gpu_any/ready", timeout=10).status_code == 200
        why = f"instance_group[1] names gpu {n}, which does not exist"
    assert why in reason(d.base, "gpu_missing")
    index = requests.post(f"{d.base}/v2/repository/index", json={}, timeout=10).json()
    state = {e["name"]: e for e in index}
    assert state["gpu_missing"]["state"] == "UNAVAILABLE"
    assert why in state["gpu_missing"]["reason"]
    assert state["cpu_two"]["state"] == "READY"


@pytest.mark.parametrize("model", ["cpu_two", "auto_one"])
def test_other_models_keep_serving(placed, model):
    d, _ = placed
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 4), np.float32), rng.standard_normal((2, 4), np.float32)
    r = infer(d.base, model, a, b)
    assert r.status_code == 200, r.text
    out = {o["name"]: np.array(o["data"], np.float32).reshape(o["shape"])
           for o in r.json()["outputs"]}
    np.testing.assert_allclose(out["OUTPUT0"], a + b, rtol=1e-6)


def test_config_reports_groups_as_written(placed):
    d, _ = placed
    cfg = requests.get(f"{d.base}/v2/models/cpu_two/config", timeout=10).json()
    assert [(g["kind"], g["count"]) for g in cfg["instance_group"]] == [("KIND_CPU", 2)]

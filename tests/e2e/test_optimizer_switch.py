"""test_optimizer_switch.py: the infd.optimize field of a model config turns the graph
optimizer off for that model; both ways give the same answers, the load log says what the
optimizer did, and a non-boolean value leaves the model UNAVAILABLE with the reason."""
import json
import os
import re
import shutil

import numpy as np
import requests

from conftest import ROOT, Daemon


def copy_spam(repo, name, infd_fields):
    src = os.path.join(ROOT, "models", "spam")
    dst = os.path.join(repo, name)
    os.makedirs(os.path.join(dst, "1"))
    shutil.copy(os.path.join(src, "1", "model.onnx"), os.path.join(dst, "1", "model.onnx"))
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["name"] = name
    cfg["infd"].update(infd_fields)
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"))


def probabilities(base, model, x):
    body = {"inputs": [{"name": "features", "datatype": "FP32", "shape": list(x.shape),
                        "data": x.ravel().tolist()}],
            "outputs": [{"name": "spam_probability"}]}
    r = requests.post(f"{base}/v2/models/{model}/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return np.array(r.json()["outputs"][0]["data"], dtype=np.float32)


def test_optimize_false_runs_the_graph_as_loaded(tmp_path):
    repo = str(tmp_path / "models")
    copy_spam(repo, "opt", {})
    copy_spam(repo, "noopt", {"optimize": False})
    copy_spam(repo, "bad", {"optimize": "no"})
    d = Daemon(repo)
    try:
        x = np.random.default_rng(3).gamma(0.5, 2.0, size=(16, 57)).astype(np.float32)
        a, b = probabilities(d.base, "opt", x), probabilities(d.base, "noopt", x)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
        cfg = requests.get(f"{d.base}/v2/models/noopt/config", timeout=10).json()
        assert cfg["infd"]["optimize"] is False
        r = requests.get(f"{d.base}/v2/models/bad/ready", timeout=10)
        assert r.status_code == 400
        assert "'optimize' must be true or false" in r.json()["error"]
        logs = d.logs()
        opt_line = next(l for l in logs.splitlines() if "model 'opt' version 1:" in l)
        noopt_line = next(l for l in logs.splitlines() if "model 'noopt' version 1:" in l)
        assert "nodes loaded" in opt_line and "linear" in opt_line
        assert "optimizer off or nothing to rewrite" in noopt_line
        loaded, executed = re.search(r"(\d+) nodes loaded, (\d+) executed", noopt_line).groups()
        assert loaded == executed
    finally:
        d.stop()

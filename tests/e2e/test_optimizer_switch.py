"""test_optimizer_switch.py: the infd.optimize field of a model config turns the graph
optimizer off for that model; both ways give the same answers, the load log says what the
optimizer did, and a non-boolean value leaves the model UNAVAILABLE with the reason."""
import re

import numpy as np
import requests

from conftest import Daemon, copy_spam, spam_probabilities


def test_optimize_false_runs_the_graph_as_loaded(tmp_path):
    repo = str(tmp_path / "models")
    copy_spam(repo, "opt", {})
    copy_spam(repo, "noopt", {"optimize": False})
    copy_spam(repo, "bad", {"optimize": "no"})
    d = Daemon(repo)
    try:
        x = np.random.default_rng(3).gamma(0.5, 2.0, size=(16, 57)).astype(np.float32)
        a, b = spam_probabilities(d.base, "opt", x), spam_probabilities(d.base, "noopt", x)
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

"""test_metrics.py: /metrics under --metrics-naming prometheus: promtool's lint passes
without findings after traffic (successes, bad requests, queue rejections), the series carry
the same values as the statistics extension, and Triton's names are gone."""
import subprocess

import numpy as np
import pytest
import requests

from conftest import Daemon
from test_daemon import post_infer


def series(text):
    """{'name{labels}': float} for every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


@pytest.fixture(scope="module")
def prom_server(repo):
    """A daemon with Prometheus names, after successes, a bad request and a rejection."""
    d = Daemon(repo, ["--metrics-naming", "prometheus"])
    try:
        for k in range(3):
            assert post_infer(d.base, "add_fp32", k)[1] == 200
        bad = requests.post(d.base + "/v2/models/add_fp32/infer", data=b"{not json")
        assert bad.status_code == 400
        assert post_infer(d.base, "timeoutq", 1)[1] == 503
        yield d
    finally:
        d.stop()


def test_promtool_clean_with_prometheus_names(prom_server):
    base = prom_server.base
    text = requests.get(base + "/metrics").text
    res = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                         capture_output=True)
    assert res.returncode == 0, (res.stdout + res.stderr).decode()
    assert not (res.stdout + res.stderr).strip(), (res.stdout + res.stderr).decode()
    assert "nv_inference_" not in text and "_us{" not in text


def test_prometheus_series_match_statistics(prom_server):
    base = prom_server.base
    text = requests.get(base + "/metrics").text
    stats = requests.get(base + "/v2/models/add_fp32/stats").json()["model_stats"][0]
    m = series(text)
    lab = '{model="add_fp32",version="1"}'
    inf = stats["inference_stats"]
    assert m["infd_inference_requests_success_total" + lab] == inf["success"]["count"]
    assert m["infd_inferences_total" + lab] == stats["inference_count"]
    assert m["infd_inference_executions_total" + lab] == stats["execution_count"]
    assert m["infd_inference_pending_requests" + lab] == 0
    for key in ("queue", "compute_input", "compute_infer", "compute_output"):
        seconds = m["infd_inference_%s_duration_seconds_total%s" % (key, lab)]
        assert seconds == pytest.approx(inf[key]["ns"] / 1e9, abs=1e-9), key
    other = m['infd_inference_requests_failure_total{model="add_fp32",version="1",reason="OTHER"}']
    assert other == inf["fail"]["count"] >= 1
    rejected = 'infd_inference_requests_failure_total{model="timeoutq",version="1",reason="REJECTED"}'
    assert m[rejected] >= 1
    assert "# TYPE infd_inference_request_duration_seconds_total counter" in text
    assert "# TYPE infd_inference_pending_requests gauge" in text
    assert m['infd_request_duration_seconds_count' + lab] == \
        inf["success"]["count"] + inf["fail"]["count"]
    assert np.isfinite(list(m.values())).all()

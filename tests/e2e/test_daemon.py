"""test_daemon.py: the daemon's behaviour under load and over its lifetime: dynamic
batching with 64 concurrent clients, a full queue and a queue timeout (503), Prometheus
metrics checked by promtool, explicit load/unload, SIGHUP re-read, and the SIGTERM drain."""
import concurrent.futures as cf
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import requests
import tritonclient.http as th

from conftest import Daemon, add_model


def infer_body(a, b):
    return json.dumps({"inputs": [
        {"name": "INPUT0", "shape": list(a.shape), "datatype": "FP32", "data": a.ravel().tolist()},
        {"name": "INPUT1", "shape": list(b.shape), "datatype": "FP32", "data": b.ravel().tolist()}],
        "outputs": [{"name": "OUTPUT0"}]})


def post_infer(base, model, k, timeout=30):
    a = np.full((1, 4), k, np.float32)
    b = np.arange(4, dtype=np.float32).reshape(1, 4)
    r = requests.post(base + "/v2/models/%s/infer" % model, data=infer_body(a, b), timeout=timeout)
    return k, r.status_code, r.json(), (a + b).ravel().tolist()


def test_dynamic_batching_64_clients(server):
    stats = th.InferenceServerClient(server.url)
    before = stats.get_inference_statistics("batched")["model_stats"][0]
    barrier = threading.Barrier(64)

    def one(k):  # one tritonclient per thread: 64 independent clients
        client = th.InferenceServerClient(server.url)
        a = np.full((1, 4), k, np.float32)
        b = np.arange(4, dtype=np.float32).reshape(1, 4)
        inputs = [th.InferInput("INPUT0", [1, 4], "FP32"), th.InferInput("INPUT1", [1, 4], "FP32")]
        inputs[0].set_data_from_numpy(a)
        inputs[1].set_data_from_numpy(b)
        barrier.wait(30)
        out = client.infer("batched", inputs).as_numpy("OUTPUT0")
        client.close()
        return out, a + b

    with cf.ThreadPoolExecutor(64) as pool:
        for out, want in pool.map(one, range(64)):
            np.testing.assert_array_equal(out, want)
    after = stats.get_inference_statistics("batched")["model_stats"][0]
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == 64
    assert executions <= 16, "64 requests ran in %d executions" % executions
    assert any(bs["batch_size"] > 1 for bs in after["batch_stats"])


def test_queue_full_gives_503(server):
    # slowq holds requests up to 5 s waiting for a batch; its queue takes 2
    with cf.ThreadPoolExecutor(2) as pool:
        waiting = [pool.submit(post_infer, server.base, "slowq", k) for k in range(2)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stats = requests.get(server.base + "/v2/models/slowq/stats").json()["model_stats"][0]
            metrics = requests.get(server.base + "/metrics").text
            if 'nv_inference_pending_request_count{model="slowq",version="1"} 2' in metrics:
                break
            time.sleep(0.02)
        _, status, body, _ = post_infer(server.base, "slowq", 9)
        assert status == 503
        assert "queue of model 'slowq' is full" in body["error"]
        for f in waiting:  # the queued ones still complete after the delay
            k, status, body, want = f.result()
            assert status == 200 and body["outputs"][0]["data"] == want
    assert stats["inference_stats"]["fail"]["count"] >= 0


def test_queue_timeout_gives_503(server):
    t0 = time.monotonic()
    _, status, body, _ = post_infer(server.base, "timeoutq", 1)
    assert status == 503 and "timed out in the queue" in body["error"]
    assert time.monotonic() - t0 < 4  # 100 ms timeout, long before the 5 s batch delay


def test_promtool_accepts_metrics(server):
    post_infer(server.base, "add_fp32", 1)
    text = requests.get(server.base + "/metrics").text
    assert 'nv_inference_request_success{model="add_fp32",version="1"}' in text
    assert 'nv_inference_request_failure{model="timeoutq",version="1",reason="REJECTED"}' in text
    assert "infd_request_duration_seconds_bucket" in text and "infd_batch_size_bucket" in text
    res = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True)
    # exit 1 is a parse error; exit 3 lists lint findings. The only findings allowed are the
    # ones Triton's own metric names carry (counters without _total, _count and _us names).
    assert res.returncode in (0, 3), res.stderr.decode()
    findings = [l for l in (res.stdout + res.stderr).decode().splitlines() if l.strip()]
    for line in findings:
        assert line.startswith("nv_inference_"), line


def test_metrics_port(repo):
    from conftest import free_port
    port = free_port()
    d = Daemon(repo, ["--metrics-port", str(port)])
    try:
        r = requests.get("http://127.0.0.1:%d/metrics" % port)
        assert r.status_code == 200 and "nv_inference_count" in r.text
        assert requests.get("http://127.0.0.1:%d/v2" % port).status_code == 404
    finally:
        d.stop()


def test_explicit_load_unload(repo):
    d = Daemon(repo, ["--model-control-mode", "explicit", "--load-model", "add_fp32"])
    try:
        client = th.InferenceServerClient(d.url)
        assert client.is_model_ready("add_fp32")
        assert not client.is_model_ready("add_int32")
        index = {e["name"]: e for e in client.get_model_repository_index()}
        assert "add_int32" in index and "state" not in index["add_int32"]
        client.load_model("add_int32")
        assert client.is_model_ready("add_int32")
        client.unload_model("add_int32")
        assert not client.is_model_ready("add_int32")
        index = {e["name"]: e for e in client.get_model_repository_index()}
        assert index["add_int32"]["state"] == "UNAVAILABLE"
        with pytest.raises(Exception, match="failed to load 'broken'"):
            client.load_model("broken")
        assert client.is_model_ready("add_fp32")
    finally:
        d.stop()


def test_sighup_rereads_repository(fresh_repo):
    d = Daemon(fresh_repo)
    try:
        add_model(os.path.join(fresh_repo, "late", "1", "model.onnx"), "FP32")
        shutil.rmtree(os.path.join(fresh_repo, "add_uint8"))
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if requests.get(d.base + "/v2/models/late/ready").status_code == 200:
                break
            time.sleep(0.05)
        assert requests.get(d.base + "/v2/models/late/ready").status_code == 200
        assert requests.get(d.base + "/v2/models/add_uint8/ready").status_code == 400
    finally:
        d.stop()


def test_sigterm_drains(fresh_repo):
    d = Daemon(fresh_repo)
    results = []
    lock = threading.Lock()

    def one(k):
        try:
            res = post_infer(d.base, "batched", k)
        except requests.RequestException as e:  # refused after the listener closed
            res = (k, None, str(e), None)
        with lock:
            results.append(res)

    threads = [threading.Thread(target=one, args=(k,)) for k in range(64)]
    for t in threads:
        t.start()
    time.sleep(0.005)
    d.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    assert d.proc.wait(60) == 0
    ok = 0
    for k, status, body, want in results:
        if status == 200:
            assert body["outputs"][0]["data"] == want
            ok += 1
        elif status is not None:
            assert status == 503 and "shutting down" in body["error"]
    assert len(results) == 64
    assert "draining" in d.logs() and "stopped" in d.logs()
    d.log.close()

"""test_daemon.py: the daemon's behaviour under load and over its lifetime: dynamic
batching with 64 concurrent clients, a full queue and a queue timeout (503), Prometheus
metrics checked by promtool, explicit load/unload, SIGHUP re-read, the SIGTERM drain, the
idle timeout and the connection limit, the per-connection buffer, and the instance threads'
scheduling policy."""
import concurrent.futures as cf
import json
import os
import shutil
import signal
import socket
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


def raw_request(sock, method, path, body=b""):
    """One HTTP/1.1 keep-alive request on an open socket; (status, body bytes)."""
    sock.sendall(b"%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                 % (method.encode(), path.encode(), len(body), body))
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before the response"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    length = 0
    for line in lines[1:]:
        name, value = line.split(":", 1)
        if name.lower() == "content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside the response body"
        rest += chunk
    return int(lines[0].split()[1]), rest


def wait_closed(sock, deadline_s=10):
    """True once the peer closed the connection (EOF or reset) within the deadline."""
    sock.settimeout(deadline_s)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def test_idle_connection_closed(repo):
    d = Daemon(repo, ["--http-idle-timeout-secs", "1"])
    try:
        idle = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        served = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        # a keep-alive connection stays usable right after its request, then idles out too
        assert raw_request(served, "GET", "/v2/health/live")[0] == 200
        assert raw_request(served, "GET", "/v2/models/add_fp32/ready")[0] == 200
        assert wait_closed(idle), "a connection that sent nothing was not closed in 10 s"
        assert wait_closed(served), "an idle keep-alive connection was not closed in 10 s"
        idle.close()
        served.close()
        assert requests.get(d.base + "/v2/health/live").status_code == 200
        assert d.proc.poll() is None
    finally:
        d.stop()


def held_connection(port, deadline_s=10):
    """A connection the server admitted (a request answered 200 on it). Retries while the
    server still counts a connection the previous client just closed."""
    end = time.monotonic() + deadline_s
    while True:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        status, _ = raw_request(sock, "GET", "/v2/health/live")
        if status == 200:
            return sock
        sock.close()
        assert time.monotonic() < end, "no connection admitted in %ds" % deadline_s
        time.sleep(0.05)


def test_connection_limit(repo):
    d = Daemon(repo, ["--max-connections", "2"])
    try:
        held = [held_connection(d.port) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        status, body = raw_request(extra, "GET", "/v2/health/live")
        assert status == 503
        assert "too many connections" in json.loads(body)["error"]
        assert "--max-connections" in json.loads(body)["error"]
        assert wait_closed(extra), "the refused connection was left open"
        extra.close()
        # the admitted connections keep being served, inference included
        a = np.ones((1, 4), np.float32)
        status, body = raw_request(held[0], "POST", "/v2/models/add_fp32/infer",
                                   infer_body(a, a).encode())
        assert status == 200 and json.loads(body)["outputs"][0]["data"] == [2.0] * 4
        assert raw_request(held[1], "GET", "/v2/health/ready")[0] == 200
        # a freed slot admits a new connection
        held.pop().close()
        held.append(held_connection(d.port))
        assert "refusing connections" in d.logs()
        for sock in held:
            sock.close()
        assert d.proc.poll() is None
    finally:
        d.stop()


def test_http_buffer_bytes(repo):
    """--http-buffer-bytes bounds the headers a connection may send (431 past it), while a
    body many times that size still arrives whole, chunk by chunk."""
    d = Daemon(repo, ["--http-buffer-bytes", "4096"])
    try:
        a = np.arange(32, dtype=np.float32).reshape(8, 4)
        b = np.ones((8, 4), np.float32)
        padded = infer_body(a, b).replace(",", "," + " " * 8000)  # whitespace is valid JSON
        assert len(padded) > 100 * 4096
        r = requests.post(d.base + "/v2/models/add_fp32/infer", data=padded, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == (a + b).ravel().tolist()
        r = requests.get(d.base + "/v2/health/live", headers={"X-Big": "x" * 8000}, timeout=30)
        assert r.status_code == 431
        # the daemon goes on serving, a normal header included
        assert requests.get(d.base + "/v2/health/live", headers={"X-Small": "x" * 1000},
                            timeout=30).status_code == 200
        assert d.proc.poll() is None
    finally:
        d.stop()


def test_instance_threads_run_sched_batch(server):
    """Model instances run under SCHED_BATCH (a woken instance does not preempt the HTTP
    thread), while the HTTP thread keeps the default policy."""
    policies = {}
    for tid in os.listdir("/proc/%d/task" % server.proc.pid):
        with open("/proc/%d/task/%s/comm" % (server.proc.pid, tid)) as f:
            comm = f.read().strip()
        policies.setdefault(comm, set()).add(os.sched_getscheduler(int(tid)))
    http = [p for comm, p in policies.items() if comm.startswith("MHD")]
    assert http and all(p == {os.SCHED_OTHER} for p in http), policies
    assert any(os.SCHED_BATCH in p for p in policies.values()), policies

#!/usr/bin/env python3
"""HTTP benchmark of the infd daemon, written to docs/benchmarks.md between the bench-http
markers. Three measurements, each in this one run:

1. HTTP ceiling: wrk with keep-alive POSTs `infer` (JSON) to a trivial model (Identity over
   FP32 [1,4]) at 1, 16 and 64 connections, beside nginx answering every POST with a static
   body of the same size as infd's response. Servers run on the first half of the cores and
   wrk on the other half; nginx gets as many workers as infd has HTTP threads.
2. Server overhead per request at concurrency 1, from the statistics extension: (queue +
   compute_input + compute_output) ns over the request count of the 1-connection run.
3. Batching gain on a compute-bound model (an MLP 1024-4096-1024 built here with the onnx
   package): throughput with 64 concurrent clients against 1, with and without
   dynamic_batching.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import requests
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import git_commit, machine  # noqa: E402

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
BEGIN, END = "<!-- bench-http:begin -->", "<!-- bench-http:end -->"
SECTION = f"""## HTTP: the infd daemon

`scripts/bench_http.py` (run by `make bench`, or alone by `make bench-http`; `BENCH_SECONDS`
sets the length of each wrk round, default 2, five rounds per server). It needs `wrk` and `nginx` (Debian packages,
installed by `scripts/deps.sh bench`); nginx is started on a free port with its own config
in a temporary folder.

{BEGIN}
{END}
"""
CONNECTIONS = (1, 16, 64)
MLP_DIMS = (1024, 4096, 1024)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_model(path, nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(model, path)


def write_config(repo, name, cfg):
    with open(os.path.join(repo, name, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f)


def build_repository(repo):
    """identity: FP32 [1,4], no batching. mlp / mlp_dyn: the same MLP (batch up to 64),
    without and with dynamic batching."""
    vi = lambda n, shape: helper.make_tensor_value_info(n, TensorProto.FLOAT, shape)
    save_model(os.path.join(repo, "identity", "1", "model.onnx"),
               [helper.make_node("Identity", ["INPUT0"], ["OUTPUT0"])],
               [vi("INPUT0", [1, 4])], [vi("OUTPUT0", [1, 4])])
    write_config(repo, "identity", {"name": "identity", "max_batch_size": 0})
    rng = np.random.default_rng(0)
    d_in, d_hidden, d_out = MLP_DIMS
    inits = [numpy_helper.from_array((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32), n)
             for n, a, b in (("W1", d_in, d_hidden), ("W2", d_hidden, d_out))]
    for name, dyn in (("mlp", None), ("mlp_dyn", {"max_queue_delay_microseconds": 200})):
        save_model(os.path.join(repo, name, "1", "model.onnx"),
                   [helper.make_node("MatMul", ["INPUT0", "W1"], ["h"]),
                    helper.make_node("Relu", ["h"], ["r"]),
                    helper.make_node("MatMul", ["r", "W2"], ["OUTPUT0"])],
                   [vi("INPUT0", ["batch", d_in])], [vi("OUTPUT0", ["batch", d_out])], inits)
        cfg = {"name": name, "max_batch_size": 64}
        if dyn is not None:
            cfg["dynamic_batching"] = dyn
        write_config(repo, name, cfg)


def infer_body(shape):
    data = np.arange(np.prod(shape), dtype=np.float32) % 7 - 3
    return json.dumps({"inputs": [{"name": "INPUT0", "shape": list(shape), "datatype": "FP32",
                                   "data": data.tolist()}]}, separators=(",", ":"))


def wait_http(url, proc, deadline_s=120):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready in {deadline_s}s")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_nginx(tmp, body, workers, cpus):
    """nginx answering every request (POST included) 200 with body, on a free port."""
    port = free_port()
    conf = os.path.join(tmp, "nginx.conf")
    temp = {k: os.path.join(tmp, "nginx-" + k) for k in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    assert "'" not in body
    with open(conf, "w", encoding="utf-8") as f:
        f.write(f"""daemon off;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {temp['body']};
    proxy_temp_path {temp['proxy']};
    fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']};
    scgi_temp_path {temp['scgi']};
    keepalive_requests 100000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
}}
""")
    proc = subprocess.Popen(taskset(cpus) + ["nginx", "-c", conf, "-p", tmp],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    wait_http(url, proc)
    return proc, url


def taskset(cpus):
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


def parse_latency(text):
    """wrk's duration ('812.00us', '1.20ms', '2.00s') in microseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[m.group(2)]


def run_wrk(url, body, connections, seconds, cpus, headers=()):
    """Requests/s and p50/p99 (µs) of keep-alive POSTs of body at this many connections."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = '
                '"application/json"\n' % json.dumps(body))
        for k, v in headers:
            f.write('wrk.headers["%s"] = "%s"\n' % (k, v))
        script = f.name
    try:
        threads = min(2, connections)
        out = subprocess.run(taskset(cpus) + ["wrk", "-t", str(threads), "-c", str(connections),
                                              "-d", f"{seconds}s", "--timeout", "60s", "--latency", "-s", script,
                                              url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"wrk on {url}: {bad.group(0) if bad else errors.group(0)}\n{out}")
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50": parse_latency(pct["50"]), "p99": parse_latency(pct["99"]),
            "requests": int(re.search(r"(\d+) requests in", out).group(1))}


def median_run(runs):
    """The median of each figure over the rounds of one server."""
    return {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "requests")}


def add_deltas(total, delta):
    return dict(delta) if total is None else {k: total[k] + delta[k] for k in total}


def model_stats(base, model):
    return requests.get(f"{base}/v2/models/{model}/stats", timeout=10).json()["model_stats"][0]


def stats_delta(before, after):
    ib, ia = before["inference_stats"], after["inference_stats"]
    d = {k: ia[k]["ns"] - ib[k]["ns"] for k in ("queue", "compute_input", "compute_infer",
                                                 "compute_output")}
    d["count"] = ia["success"]["count"] - ib["success"]["count"]
    d["inferences"] = after["inference_count"] - before["inference_count"]
    d["executions"] = after["execution_count"] - before["execution_count"]
    return d


def fmt_us(us):
    return f"{us:.0f}" if us >= 100 else f"{us:.1f}"


def bench(args, tmp):
    repo = os.path.join(tmp, "models")
    build_repository(repo)
    cores = sorted(os.sched_getaffinity(0))
    half = len(cores) // 2
    server_cpus, client_cpus = (cores[:half], cores[half:]) if half and not args.no_pin else ([], [])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(os.path.join(tmp, "infd.log"), "w+", encoding="utf-8")
    infd = subprocess.Popen([args.infd, "--model-repository", repo, "--http-port", str(port),
                             "--http-thread-count", str(args.http_threads), "--log-level", "warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    nginx = None
    try:
        wait_http(base + "/v2/health/ready", infd)
        body = infer_body([1, 4])
        url = f"{base}/v2/models/identity/infer"
        sample = requests.post(url, data=body, timeout=10)
        sample.raise_for_status()
        nginx, nginx_url = start_nginx(tmp, sample.text, args.http_threads, server_cpus)
        assert len(requests.post(nginx_url, data=body, timeout=10).content) == len(sample.content)
        # infd's server threads move to the server cores, as nginx's do
        if server_cpus:
            subprocess.run(["taskset", "-a", "-p", "-c", ",".join(map(str, server_cpus)),
                            str(infd.pid)], check=True, capture_output=True)
        ceiling, overhead = [], None
        for c in CONNECTIONS:
            run_wrk(url, body, c, 1, client_cpus)  # warm-up
            run_wrk(nginx_url, body, c, 1, client_cpus)
            # rounds alternate between the two servers, so that a slow spell of a shared
            # machine lands on both; the ratio is the median of the rounds' ratios
            rounds = []
            for _ in range(args.rounds):
                before = model_stats(base, "identity")
                i = run_wrk(url, body, c, args.seconds, client_cpus)
                delta = stats_delta(before, model_stats(base, "identity"))
                n = run_wrk(nginx_url, body, c, args.seconds, client_cpus)
                rounds.append((i, n))
                if c == 1:
                    overhead = add_deltas(overhead, delta)
            i, n = (median_run([r[k] for r in rounds]) for k in (0, 1))
            ratios = [a["rps"] / b["rps"] for a, b in rounds]
            ceiling.append((c, i, n, statistics.median(ratios)))
            print(f"ceiling c={c}: infd {i['rps']:.0f} req/s p50 {i['p50']:.0f} us, "
                  f"nginx {n['rps']:.0f} req/s p50 {n['p50']:.0f} us, ratio "
                  f"{statistics.median(ratios):.2f}x (rounds: "
                  f"{', '.join(f'{x:.2f}' for x in ratios)})", flush=True)
        if server_cpus:  # the MLP wants every core
            subprocess.run(["taskset", "-a", "-p", "-c", ",".join(map(str, cores)), str(infd.pid)],
                           check=True, capture_output=True)
        batching = []
        mlp_body = infer_body([1, MLP_DIMS[0]])
        for model in ("mlp", "mlp_dyn"):
            murl = f"{base}/v2/models/{model}/infer"
            run_wrk(murl, mlp_body, 1, 1, [])  # warm-up
            row = {"model": model}
            for c in (1, 64):
                before = model_stats(base, model)
                row[c] = run_wrk(murl, mlp_body, c, args.seconds * args.rounds, [])
                row[c]["stats"] = stats_delta(before, model_stats(base, model))
                print(f"batching {model} c={c}: {row[c]['rps']:.1f} req/s, "
                      f"{row[c]['stats']['inferences']} inferences in "
                      f"{row[c]['stats']['executions']} executions", flush=True)
            batching.append(row)
    finally:
        if nginx:
            stop(nginx)
        stop(infd)
        log.close()
    return ceiling, overhead, batching, server_cpus, client_cpus


def report(args, ceiling, overhead, batching, server_cpus, client_cpus):
    cpu, cores = machine()
    pin = (f"servers on cores {server_cpus}, wrk on cores {client_cpus}" if server_cpus
           else "no core pinning")
    lines = [f"Measured {datetime.date.today().isoformat()} on {cpu} ({cores} cores), commit "
             f"{git_commit()}, {pin}; infd with "
             f"{args.http_threads} HTTP thread(s), nginx with as many workers."
             + (f" {args.note}" if args.note else ""),
             "",
             f"The ceiling alternates {args.rounds} rounds of {args.seconds} s between infd and "
             "nginx at each connection count; req/s and latencies are the medians over the "
             "rounds, the ratio is the median of the rounds' ratios. Batching runs last "
             f"{args.seconds * args.rounds} s.",
             "",
             "**HTTP ceiling**: wrk (keep-alive, at most 2 threads) POSTing `infer` as JSON to "
             "an Identity over FP32 [1,4]; nginx answers the same POST with a static body of "
             "the same size (goal: infd/nginx >= 0.5x at 64 connections).",
             "",
             "| connections | infd req/s | infd p50 µs | infd p99 µs | nginx req/s | nginx p50 µs "
             "| nginx p99 µs | infd / nginx |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c, i, n, ratio in ceiling:
        lines.append(f"| {c} | {i['rps']:.0f} | {fmt_us(i['p50'])} | {fmt_us(i['p99'])} "
                     f"| {n['rps']:.0f} | {fmt_us(n['p50'])} | {fmt_us(n['p99'])} "
                     f"| {ratio:.2f}x |")
    o = overhead
    per = lambda k: o[k] / o["count"] / 1e3
    lines += ["",
              "**Server overhead** at 1 connection, from the statistics extension over "
              f"{o['count']} requests (goal: at most 30 µs): queue {per('queue'):.1f} µs + "
              f"compute_input {per('compute_input'):.1f} µs + compute_output "
              f"{per('compute_output'):.1f} µs = **"
              f"{per('queue') + per('compute_input') + per('compute_output'):.1f} µs** per "
              f"request (compute_infer, the model itself: {per('compute_infer'):.1f} µs).",
              "",
              f"**Batching gain** on an MLP {'-'.join(map(str, MLP_DIMS))} (FP32, batch up to "
              "64, one instance), JSON requests of one row; `mlp_dyn` has `dynamic_batching` "
              "(`max_queue_delay_microseconds` 200).",
              "",
              "| model | dynamic batching | 1 client req/s | 64 clients req/s | gain | "
              "64 clients: p50 ms | rows per execution |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for row in batching:
        one, many = row[1], row[64]
        s = many["stats"]
        lines.append(f"| {row['model']} | {'yes' if row['model'] == 'mlp_dyn' else 'no'} "
                     f"| {one['rps']:.1f} | {many['rps']:.1f} | {many['rps'] / one['rps']:.2f}x "
                     f"| {many['p50'] / 1e3:.1f} | {s['inferences'] / max(s['executions'], 1):.1f} |")
    return "\n".join(lines)


def write_doc(path, text):
    doc = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n"
    if BEGIN not in doc or END not in doc:
        doc = doc.rstrip("\n") + "\n\n" + SECTION
    head, rest = doc.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--infd", default=os.path.join(ROOT, "build", "infd"))
    ap.add_argument("--seconds", type=int, default=2, help="duration of each wrk run")
    ap.add_argument("--rounds", type=int, default=5, help="alternating infd / nginx rounds "
                    "per connection count in the HTTP ceiling")
    ap.add_argument("--http-threads", type=int, default=1,
                    help="infd --http-thread-count, and nginx worker_processes")
    ap.add_argument("--no-pin", action="store_true", help="do not split cores between "
                    "servers and wrk")
    ap.add_argument("--note", default="", help="appended to the table's caption")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    ap.add_argument("--no-write", action="store_true", help="print the tables only")
    args = ap.parse_args()
    for tool in ("wrk", "nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"bench_http: {tool} not found (scripts/deps.sh bench installs it)")
    with tempfile.TemporaryDirectory(prefix="infd-bench-http-") as tmp:
        results = bench(args, tmp)
    text = report(args, *results)
    print(text)
    if not args.no_write:
        write_doc(args.doc, text)
        print(f"bench_http: wrote {os.path.relpath(args.doc)}")


if __name__ == "__main__":
    main()

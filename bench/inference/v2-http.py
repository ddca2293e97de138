#!/usr/bin/env python3
"""bench/inference/v2-http.py -- the Open Inference Protocol over HTTP: Outpost's gateway with the
model in the daemon's process, next to KServe's Python model server, same machine, same run.

Both serve the anchor MLP (../shared/anchors/models/mlp.onnx, 784-512-256-10): Outpost as an
InferenceService (`outpost model deploy`), KServe as kserve.ModelServer with a kserve.Model that
wraps onnxruntime (intra_op 1), at its defaults (one worker, its per-request log lines), bound to
127.0.0.1. Both answers are checked against onnxruntime in this process before any timing.

wrk (-t1, a Lua POST of one V2 JSON request at batch 1, 6 KB) loads each server at c=1 and c=16
for DURATION seconds, in ROUNDS rounds with the order rotated every round; the table shows the
median over rounds of req/s, p50 and p99, the server's CPU µs per request (from /proc), and the
ratio Outpost / KServe in req/s. A third target, nginx answering every POST with a constant
V2-shaped JSON body, is the host's floor for this client: no server does less per request, so
its req/s at a connection count is the most any server can show here (a goal above it cannot be
met on this host). Also printed: the daemon's RSS with no model, with the MLP and
the CNN loaded, and KServe's RSS; the time `outpost model deploy` takes until Ready and the
model load time the daemon logs.

Usage: bench/inference/v2-http.py [--rounds 3] [--duration 10] [--outpost PATH]
Self-installing: venv $OUTPOST_PY_VENV (default ~/.cache/outpost-inference-venv) with numpy,
onnxruntime, kserve and psutil; apt: wrk, nginx.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODELS = Path(__file__).resolve().parents[3] / "shared" / "anchors" / "models"


def bootstrap():
    missing = [tool for tool in ("wrk", "nginx") if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.check_call(["apt-get", "install", "-y", "-q", *missing], env=env, stdout=subprocess.DEVNULL)
    sys.dont_write_bytecode = True  # keep bench/lib free of __pycache__
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    import pyvenv
    pyvenv.reexec_in_venv(__file__, ["numpy", "onnxruntime", "kserve", "psutil"], ["numpy", "onnxruntime", "kserve", "psutil"])


def serve_kserve(port, model_path):
    """Child mode: KServe's model server on 127.0.0.1:port (its REST server binds 0.0.0.0 unless
    uvicorn's config is overridden)."""
    import numpy as np
    import onnxruntime as ort
    import uvicorn
    import kserve
    from kserve import InferOutput, InferRequest, InferResponse

    original = uvicorn.Config

    class LoopbackConfig(original):
        def __init__(self, *a, **kw):
            kw["host"] = "127.0.0.1"
            super().__init__(*a, **kw)

    uvicorn.Config = LoopbackConfig

    class Model(kserve.Model):
        def __init__(self, name, path):
            super().__init__(name)
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            self.input = self.session.get_inputs()[0].name
            self.ready = True

        def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
            x = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
            y = self.session.run(None, {self.input: x})[0]
            out = InferOutput(name="output", shape=list(y.shape), datatype="FP32")
            out.set_data_from_numpy(y, binary_data=payload.use_binary_outputs)
            return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=[out],
                                 use_binary_outputs=payload.use_binary_outputs)

    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([Model("mlp", model_path)])


def main():
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
    import harness as h
    import numpy as np
    import onnxruntime as ort
    import json
    import psutil

    parser = h.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "3")))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", "10")))
    parser.add_argument("--conns", default=os.environ.get("CONNS", "1 16"))
    args = parser.parse_args()
    h.check_binaries(args)
    h.install_signal_handlers()
    cleanup = h.Cleanup()
    lines = []

    def out(text=""):
        print(text, flush=True)
        lines.append(text)

    try:
        for line in h.host_lines(args):
            out(line)
        out(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')} for the daemon and KServe's onnxruntime "
            f"(onnxruntime uses its own kernels)")
        mlp, cnn = MODELS / "mlp.onnx", MODELS / "cnn.onnx"
        tmp = tempfile.mkdtemp(prefix="outpost-infhttp-")
        cleanup.add(lambda: subprocess.run(["rm", "-rf", tmp]))
        rng = np.random.default_rng(20261129)
        x = np.round(rng.random((1, 784), dtype=np.float32), 4).astype(np.float32)
        expected = ort.InferenceSession(str(mlp), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
        # The anchor's body: four decimals per value (6 KB).
        body = json.dumps({"id": "bench", "inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32",
                                                      "data": [round(float(v), 4) for v in x.ravel()]}]}).encode()
        body_path = os.path.join(tmp, "body.json")
        with open(body_path, "wb") as f:
            f.write(body)

        # Outpost: idle RSS, deploy, load, RSS with both models.
        daemon = h.Daemon(args, cleanup, label="infhttp")
        daemon.start()
        time.sleep(3)
        rss_idle = h.status_field_kib(daemon.pid, "VmRSS") / 1024
        started = time.perf_counter()
        daemon.cli("model", "deploy", "mlp", "--storage-uri", f"file://{mlp}", timeout=120)
        deploy_ms = (time.perf_counter() - started) * 1000
        daemon.cli("model", "deploy", "cnn", "--storage-uri", f"file://{cnn}", timeout=120)
        logs = daemon.cli("service", "logs", "mlp").stdout.decode()
        load_line = next((l for l in logs.splitlines() if "loaded from" in l), "")
        answer = post(daemon.gateway_port, "mlp.default.localhost", body)
        check(answer, expected, "outpost")
        cnn_body = json.dumps({"inputs": [{"name": "input", "shape": [1, 1, 28, 28], "datatype": "FP32",
                                           "data": [0.5] * 784}]}).encode()
        if post(daemon.gateway_port, "cnn.default.localhost", cnn_body, raw=True)[0] != 200:
            raise RuntimeError("the CNN did not answer")
        time.sleep(1)
        rss_models = h.status_field_kib(daemon.pid, "VmRSS") / 1024

        # KServe.
        kport = h.free_port()
        kserve_log = open(os.path.join(tmp, "kserve.log"), "wb")
        kserve = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve-kserve", str(kport), str(mlp)],
                                  stdout=kserve_log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        cleanup.add(lambda: h.stop_process(kserve))
        if not h.wait_until(lambda: ready(kport), timeout=120, interval=0.2):
            raise RuntimeError("KServe did not become ready; see " + kserve_log.name)
        check(post(kport, None, body), expected, "kserve")
        time.sleep(2)
        rss_kserve = psutil.Process(kserve.pid).memory_info().rss / 2**20

        # The floor: a constant answer the size of the MLP's (ten outputs).
        floor = h.ConstantServer(os.path.join(tmp, "floor"), cleanup, 200, json.dumps(
            {"model_name": "mlp", "id": "bench", "outputs": [{"name": "output", "datatype": "FP32", "shape": [1, 10],
                                                              "data": [0.0] * 10}]}, separators=(",", ":")))
        targets = {"outpost": (daemon.gateway_port, "mlp.default.localhost", lambda: h.cpu_seconds(daemon.pid)),
                   "kserve": (kport, None, lambda: h.cpu_seconds(kserve.pid)),
                   "nginx-200": (floor.port, None, floor.cpu_seconds)}
        conns_list = [int(c) for c in args.conns.split()]
        samples = {}
        for round_index in range(args.rounds):
            shift = round_index % len(targets)
            order = list(targets)[shift:] + list(targets)[:shift]
            for conns in conns_list:
                for name in order:
                    port, host, cpu = targets[name]
                    cpu_before = cpu()
                    result = run_wrk(port, host, body_path, conns, args.duration, tmp)
                    result["cpu_us"] = (cpu() - cpu_before) * 1e6 / max(result["requests"], 1)
                    samples.setdefault((name, conns), []).append(result)
                    print(f"  round {round_index + 1} {name:9} c={conns:<3} {result['rps']:>9.0f} req/s  "
                          f"p50 {result['p50_us']} us  p99 {result['p99_us']} us  errors {result['errors']}", flush=True)

        out()
        out(f"V2 REST POST /v2/models/mlp/infer, JSON, batch 1 ({len(body)} B); wrk -t1, {args.duration} s x {args.rounds} rounds (median)")
        rows = []
        for conns in conns_list:
            kserve_rps = statistics.median(r["rps"] for r in samples[("kserve", conns)])
            for name in targets:
                runs = samples[(name, conns)]
                rps = statistics.median(r["rps"] for r in runs)
                rows.append([name, conns, f"{rps:.0f}", f"{statistics.median(r['p50_us'] for r in runs) / 1000:.2f}",
                             f"{statistics.median(r['p99_us'] for r in runs) / 1000:.2f}",
                             sum(r["errors"] for r in runs), f"{statistics.median(r['cpu_us'] for r in runs):.0f}",
                             f"{rps / kserve_rps:.1f}x", " ".join(f"{r['rps']:.0f}" for r in runs)])
        out(h.table(["server", "conns", "req/s", "p50 ms", "p99 ms", "errors", "server CPU us/req", "vs kserve", "req/s per round"], rows))
        for conns in conns_list:
            goal = 15 * statistics.median(r["rps"] for r in samples[("kserve", conns)])
            ceiling = statistics.median(r["rps"] for r in samples[("nginx-200", conns)])
            out(f"c={conns}: 15x KServe is {goal:.0f} req/s; nginx's constant answer (the host's floor for this client) "
                f"reached {ceiling:.0f} req/s{' -- the goal is above what any server can show here' if goal > ceiling else ''}")
        out()
        out(f"outpost RSS: {rss_idle:.1f} MiB with no model, {rss_models:.1f} MiB with the MLP (2 MiB) and the CNN loaded; "
            f"kserve RSS with the MLP: {rss_kserve:.1f} MiB")
        out(f"outpost model deploy mlp until Ready: {deploy_ms:.0f} ms (CLI, includes the revision's first load)")
        out(f"daemon log: {load_line.strip()}")
        out(f"loadavg at end: {h.loadavg()}")
        path = h.write_results(args, "inference-http", "\n".join(lines))
        print(f"results: {path}")
    finally:
        cleanup.run()


def post(port, host, body, raw=False):
    import http.client
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    connection.request("POST", "/v2/models/" + ("cnn" if host and host.startswith("cnn") else "mlp") + "/infer", body, headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return (response.status, data) if raw else (response.status, __import__("json").loads(data) if data else {})


def check(answer, expected, who):
    import numpy as np
    status, payload = answer
    if status != 200:
        raise RuntimeError(f"{who} answered {status}: {payload}")
    output = next(o for o in payload["outputs"] if o["name"] == "output")
    got = np.array(output["data"], dtype=np.float64).reshape(expected.shape)
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        raise RuntimeError(f"{who}'s output differs from onnxruntime's")


def ready(port):
    import http.client
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/v2/models/mlp/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False


def run_wrk(port, host, body_path, conns, duration, tmp):
    lua = os.path.join(tmp, f"post-{port}.lua")
    with open(lua, "w") as f:
        f.write(f"""
local f = io.open("{body_path}", "rb"); local body = f:read("*a"); f:close()
wrk.method = "POST"; wrk.body = body
wrk.headers["Content-Type"] = "application/json"
{f'wrk.headers["Host"] = "{host}"' if host else ''}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %d %d %d %d\\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
""")
    output = subprocess.run(["timeout", str(duration + 30), "wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
                             "-s", lua, f"http://127.0.0.1:{port}/v2/models/mlp/infer"],
                            capture_output=True, text=True).stdout
    for line in output.splitlines():
        if line.startswith("RESULT"):
            n, rps, p50, p99, errors, non2xx = line.split()[1:]
            return {"requests": int(n), "rps": float(rps), "p50_us": int(p50), "p99_us": int(p99),
                    "errors": int(errors) + int(non2xx)}
    raise RuntimeError("wrk produced no result: " + output[-500:])


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-kserve":
        serve_kserve(int(sys.argv[2]), sys.argv[3])
    else:
        bootstrap()
        main()

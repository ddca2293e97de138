#!/usr/bin/env python3
"""Gateway benchmark: Outpost's gateway, nginx and haproxy in front of the same backend, in one
run (Python 3 standard library only; loopback only).

The backend is one nginx process (`return 200 "ok"`, one worker), set up as in
shared/anchors/gateway-baseline.sh. Outpost runs it as the workload of a service with a fixed
port and min-scale 1, so all three proxies forward to the very same process:

  direct   wrk → backend
  outpost  wrk → outpost gateway (Host: bench.default.localhost) → backend
  nginx    wrk → nginx proxy_pass (upstream keepalive) → backend
  haproxy  wrk → haproxy (http-reuse always) → backend

Rounds are interleaved (the order rotates each round) and medians are reported, because the box
is shared: compare ratios within one run. Per round and target:

  (A) saturation: wrk -t2 -c64, closed loop, HTTP/1.1 keep-alive → req/s, p50, p99, errors
  (B) one connection: wrk -t1 -c1 → p50/p99 and the p50 added over direct

  (D) HTTP/2 (h2c, prior knowledge), when h2load is installed: h2load -t2 -c8 -m8 through
      Outpost's plaintext listener and through the same nginx with a second `listen ... http2`
      server (both forward HTTP/1.1 to the backend) → req/s, mean latency, errors

Then RSS: each proxy's idle RSS (before any load) and peak RSS under load (the Outpost daemon
alone, without its worker; nginx master and workers; haproxy). The proxies get as many
workers/threads as Outpost has event loops (one per core) unless --proxy-workers says otherwise.

Usage: bench/gateway/run.py [--rounds 3] [--duration 10] [--connections 64] [--latency-duration 5]
                            [--h2-connections 8] [--h2-streams 8] [--proxy-workers N]
                            [--outpost PATH] [--echo PATH]
Needs wrk, nginx and haproxy (`apt-get install wrk nginx haproxy`); the HTTP/2 rows need h2load
(`apt-get install nghttp2-client`) and are skipped without it.
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep bench/lib free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness as h  # noqa: E402

HOST = "bench.default.localhost"
TARGETS = ["direct", "outpost", "nginx", "haproxy"]
H2_TARGETS = ["outpost", "nginx"]

# The goals for the gateway.
GOAL_THROUGHPUT_VS_NGINX = 1.0
GOAL_ADDED_P50_US = 30.0

REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %d %d %d %d\\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def write_configs(folder, backend_port, nginx_port, haproxy_port, workers, nginx_h2_port):
    """The backend's and the two peer proxies' configurations (as in gateway-baseline.sh)."""
    backend = folder / "backend"
    proxy = folder / "nginxp"
    backend.mkdir()
    proxy.mkdir()
    (backend / "nginx.conf").write_text(f"""worker_processes 1;
user root;
pid {backend}/nginx.pid;
error_log {backend}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{backend_port} backlog=4096;
    location / {{ return 200 "ok"; }}
  }}
}}
""")
    (proxy / "nginx.conf").write_text(f"""worker_processes {workers};
user root;
pid {proxy}/nginx.pid;
error_log {proxy}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  upstream be {{
    server 127.0.0.1:{backend_port};
    keepalive 128;
    keepalive_requests 10000000;
  }}
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_buffering on;
  server {{
    listen 127.0.0.1:{nginx_port} backlog=4096;
    location / {{ proxy_pass http://be; }}
  }}
  server {{
    listen 127.0.0.1:{nginx_h2_port} http2 backlog=4096;
    location / {{ proxy_pass http://be; }}
  }}
}}
""")
    (folder / "haproxy.cfg").write_text(f"""global
  nbthread {workers}
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:{haproxy_port}
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:{backend_port} maxconn 1000
""")
    (folder / "report.lua").write_text(REPORT_LUA)
    return backend, proxy


def create_backend_service(daemon, backend_dir, backend_port):
    """Runs the backend nginx as service `bench` of the daemon (min-scale 1) and waits for it."""
    nginx_args = ["-p", str(backend_dir), "-c", str(backend_dir / "nginx.conf"), "-e", str(backend_dir / "error.log"),
                  "-g", "daemon off; master_process off;"]
    daemon.cli("service", "create", "bench", "--command", shutil.which("nginx"),
               *[f"--arg={arg}" for arg in nginx_args],  # `--arg=-p`: a value that looks like a flag
               "--port", str(backend_port), "--annotation", "autoscaling.knative.dev/min-scale=1", timeout=90)
    if not h.wait_until(lambda: daemon.get("bench").status == 200, timeout=30):
        raise RuntimeError(f"the backend does not answer through Outpost; log:\n{daemon.log_tail()}")


def tree_rss_kib(pid):
    """VmRSS of a process and its direct children (nginx master + workers), in KiB."""
    total = h.status_field_kib(pid, "VmRSS") or 0
    for child in h.children_of(pid):
        total += h.status_field_kib(child, "VmRSS") or 0
    return total


class PeakSampler:
    """Samples the RSS of a process tree every 100 ms while a load runs; keeps the peak."""

    def __init__(self, rss):
        self.rss = rss
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.1)

    def stop(self):
        self.running = False
        self.thread.join(timeout=2)
        return self.peak


def run_wrk(folder, url, threads, connections, duration, host=None):
    """One wrk run; returns (requests, req/s, p50 µs, p99 µs, errors incl. non-2xx)."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s",
               "-s", str(folder / "report.lua")]
    if host:
        command += ["-H", f"Host: {host}"]
    done = subprocess.run(command + [url], capture_output=True, timeout=duration + 30, stdin=subprocess.DEVNULL)
    for line in done.stdout.decode().splitlines():
        if line.startswith("RESULT "):
            n, rps, p50, p99, errors, non2xx = line.split()[1:]
            return int(n), float(rps), float(p50), float(p99), int(errors) + int(non2xx)
    raise RuntimeError(f"wrk gave no result for {url}: {done.stdout.decode()} {done.stderr.decode()}")


def run_h2load(url, clients, streams, duration, authority=None):
    """One h2load run over h2c; returns (requests, req/s, mean ms, errors incl. non-2xx)."""
    command = ["h2load", f"-t{min(2, clients)}", f"-c{clients}", f"-m{streams}"]
    command += ["-D", str(duration)] if duration else ["-n", "20"]
    if authority:
        command += ["-H", f":authority: {authority}"]
    done = subprocess.run(command + [url], capture_output=True, timeout=(duration or 10) + 30, stdin=subprocess.DEVNULL)
    rps = mean_ms = None
    requests = errors = 0
    for line in done.stdout.decode().splitlines():
        fields = line.split()
        if line.startswith("finished in"):
            rps = float(fields[3])
        elif line.startswith("requests:"):
            requests, errors = int(fields[7]), int(fields[9]) + int(fields[11]) + int(fields[13])
        elif line.startswith("status codes:"):
            errors += sum(int(fields[i]) for i in (4, 6, 8))
        elif line.startswith("time for request:"):
            mean = fields[5]
            mean_ms = float(mean[:-2]) if mean.endswith("ms") else float(mean[:-2]) / 1000 if mean.endswith("us") else float(mean[:-1]) * 1000
    if rps is None or mean_ms is None:
        raise RuntimeError(f"h2load gave no result for {url}: {done.stdout.decode()} {done.stderr.decode()}")
    return requests, rps, mean_ms, errors


def main():
    parser = h.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per saturation run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections when saturating (default 64)")
    parser.add_argument("--latency-duration", type=int, default=5, help="seconds per c=1 run (default 5)")
    parser.add_argument("--h2-connections", type=int, default=8, help="h2load connections (default 8)")
    parser.add_argument("--h2-streams", type=int, default=8, help="h2load concurrent streams per connection (default 8: 64 in flight, as wrk -c64)")
    parser.add_argument("--proxy-workers", type=int, default=os.cpu_count(),
                        help="nginx workers / haproxy threads (default: one per core, as Outpost's event loops)")
    args = parser.parse_args()
    h.check_binaries(args)
    for tool in ("wrk", "nginx", "haproxy"):
        if not shutil.which(tool):
            print(f"error: {tool} is not installed (apt-get install wrk nginx haproxy)", file=sys.stderr)
            sys.exit(2)
    h2 = shutil.which("h2load") is not None
    if not h2:
        print("# h2load not installed: the HTTP/2 rows are skipped (apt-get install nghttp2-client)", flush=True)
    h.install_signal_handlers()

    header = h.host_lines(args)
    print("\n".join(header), flush=True)
    cleanup = h.Cleanup()
    folder = Path(tempfile.mkdtemp(prefix="outpost-bench-gateway-"))
    cleanup.add(lambda: shutil.rmtree(folder, ignore_errors=True))
    try:
        backend_port, nginx_port, haproxy_port, nginx_h2_port = h.free_port(), h.free_port(), h.free_port(), h.free_port()
        backend_dir, proxy_dir = write_configs(folder, backend_port, nginx_port, haproxy_port, args.proxy_workers, nginx_h2_port)

        daemon = h.Daemon(args, cleanup, label="gateway")
        daemon.start()
        create_backend_service(daemon, backend_dir, backend_port)

        peers = {}
        nginx = subprocess.Popen(["nginx", "-p", str(proxy_dir), "-c", str(proxy_dir / "nginx.conf"),
                                  "-e", str(proxy_dir / "error.log"), "-g", "daemon off; master_process on;"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanup.add(lambda: h.stop_process(nginx))
        haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(folder / "haproxy.cfg")],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanup.add(lambda: h.stop_process(haproxy))
        for port in (nginx_port, haproxy_port, nginx_h2_port):
            if not h.wait_listening(port, timeout=10):
                raise RuntimeError(f"a peer proxy did not listen on {port}")
        peers = {"nginx": nginx.pid, "haproxy": haproxy.pid}

        urls = {
            "direct": (f"http://127.0.0.1:{backend_port}/", None),
            "outpost": (f"http://127.0.0.1:{daemon.gateway_port}/", HOST),
            "nginx": (f"http://127.0.0.1:{nginx_port}/", None),
            "haproxy": (f"http://127.0.0.1:{haproxy_port}/", None),
        }
        rss = {
            "direct": lambda: 0,
            "outpost": lambda: h.status_field_kib(daemon.pid, "VmRSS") or 0,
            "nginx": lambda: tree_rss_kib(peers["nginx"]),
            "haproxy": lambda: tree_rss_kib(peers["haproxy"]),
        }
        for target, (url, host) in urls.items():
            status = h.raw_get(int(url.rsplit(":", 1)[1].strip("/")), "/", host=host).status
            if status != 200:
                raise RuntimeError(f"sanity: {target} answered {status}")
        h2_urls = {
            "outpost": (f"http://127.0.0.1:{daemon.gateway_port}/", HOST),
            "nginx": (f"http://127.0.0.1:{nginx_h2_port}/", None),
        }
        if h2:
            for target, (url, authority) in h2_urls.items():
                requests, _, _, errors = run_h2load(url, 1, 1, 0, authority)
                if requests != 20 or errors:
                    raise RuntimeError(f"sanity: h2c through {target}: {requests} succeeded, {errors} errors")
        time.sleep(1)
        idle = {target: rss[target]() for target in TARGETS}

        print("# warm-up", flush=True)
        for target in TARGETS:
            url, host = urls[target]
            run_wrk(folder, url, 1, args.connections, 2, host)

        http2 = {t: [] for t in H2_TARGETS}
        saturation = {t: [] for t in TARGETS}
        single = {t: [] for t in TARGETS}
        peak = {t: 0 for t in TARGETS}
        for round_index in range(args.rounds):
            print(f"# round {round_index + 1}/{args.rounds}", flush=True)
            order = TARGETS[round_index % len(TARGETS):] + TARGETS[:round_index % len(TARGETS)]
            for target in order:
                url, host = urls[target]
                sampler = PeakSampler(rss[target])
                result = run_wrk(folder, url, 2, args.connections, args.duration, host)
                peak[target] = max(peak[target], sampler.stop())
                saturation[target].append(result)
                print(f"  sat  {target:<8} {result[1]:>10.0f} req/s  p50 {result[2]:>7.0f} us  p99 {result[3]:>7.0f} us  errors {result[4]}", flush=True)
            for target in order:
                url, host = urls[target]
                result = run_wrk(folder, url, 1, 1, args.latency_duration, host)
                single[target].append(result)
                print(f"  c=1  {target:<8} {result[1]:>10.0f} req/s  p50 {result[2]:>7.0f} us  p99 {result[3]:>7.0f} us  errors {result[4]}", flush=True)
            for target in (H2_TARGETS if round_index % 2 == 0 else H2_TARGETS[::-1]) if h2 else []:
                url, authority = h2_urls[target]
                result = run_h2load(url, args.h2_connections, args.h2_streams, args.duration, authority)
                http2[target].append(result)
                print(f"  h2c  {target:<8} {result[1]:>10.0f} req/s  mean {result[2]:>7.2f} ms  errors {result[3]}", flush=True)
            daemon.check_alive()

        def med(results, index):
            return statistics.median(r[index] for r in results)

        out = list(header)
        out.append(f"backend: nginx return 200 (1 worker) on 127.0.0.1:{backend_port}; peers with {args.proxy_workers} "
                   f"workers/threads; rounds={args.rounds} (medians); saturation wrk -t2 -c{args.connections} "
                   f"-d{args.duration}s; c=1 wrk -t1 -c1 -d{args.latency_duration}s")
        out.append("")
        nginx_rps = med(saturation["nginx"], 1)
        direct_rps = med(saturation["direct"], 1)
        rows = []
        for target in TARGETS:
            rps = med(saturation[target], 1)
            rows.append([target, f"{rps:.0f}", h.fmt(rps / nginx_rps), h.fmt(rps / direct_rps),
                         h.fmt(med(saturation[target], 2) / 1000), h.fmt(med(saturation[target], 3) / 1000),
                         sum(r[4] for r in saturation[target]),
                         ", ".join(f"{r[1]:.0f}" for r in saturation[target])])
        out.append(f"(A) saturation, HTTP/1.1 keep-alive, c={args.connections}")
        out.append(h.table(["path", "req/s", "vs nginx", "vs direct", "p50 ms", "p99 ms", "errors", "req/s per round"], rows))
        out.append("")
        direct_p50 = med(single["direct"], 2)
        rows = []
        for target in TARGETS:
            p50 = med(single[target], 2)
            rows.append([target, f"{med(single[target], 1):.0f}", f"{p50:.0f}", f"{med(single[target], 3):.0f}",
                         "-" if target == "direct" else f"{p50 - direct_p50:.0f}", sum(r[4] for r in single[target])])
        out.append("(B) one connection (c=1): added latency per hop")
        out.append(h.table(["path", "req/s", "p50 us", "p99 us", "+p50 vs direct us", "errors"], rows))
        out.append("")
        if h2:
            nginx_h2 = med(http2["nginx"], 1)
            rows = [[t, f"{med(http2[t], 1):.0f}", h.fmt(med(http2[t], 1) / nginx_h2), h.fmt(med(http2[t], 2)),
                     sum(r[3] for r in http2[t]), ", ".join(f"{r[1]:.0f}" for r in http2[t])] for t in H2_TARGETS]
            out.append(f"(D) HTTP/2 cleartext (prior knowledge), h2load -t2 -c{args.h2_connections} -m{args.h2_streams} "
                       f"-D{args.duration}; HTTP/1.1 to the backend")
            out.append(h.table(["path", "req/s", "vs nginx", "mean ms", "errors", "req/s per round"], rows))
            out.append("")
        rows = [[t, h.fmt(idle[t] / 1024, 1), h.fmt(peak[t] / 1024, 1)] for t in TARGETS if t != "direct"]
        out.append("(C) RSS, MiB (Outpost: the daemon without its worker; nginx: master + workers)")
        out.append(h.table(["proxy", "idle", "peak under load"], rows))
        out.append("")
        ratio = med(saturation["outpost"], 1) / nginx_rps
        added = med(single["outpost"], 2) - direct_p50
        out.append(f"goals: throughput >= {GOAL_THROUGHPUT_VS_NGINX:.1f}x nginx: {ratio:.2f}x "
                   f"({'met' if ratio >= GOAL_THROUGHPUT_VS_NGINX else 'NOT met'}); added p50 at c=1 <= "
                   f"{GOAL_ADDED_P50_US:.0f} us: {added:.0f} us ({'met' if added <= GOAL_ADDED_P50_US else 'NOT met'})")
        out.append(f"loadavg at end: {h.loadavg()}")
        text = "\n".join(out) + "\n"
        print()
        print(text)
        results = Path(args.results_dir)
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"gateway-{h.utc_stamp()}.txt"
        path.write_text(text)
        print(f"# written to {path}")
    finally:
        cleanup.run()


if __name__ == "__main__":
    main()

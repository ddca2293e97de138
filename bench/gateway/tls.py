#!/usr/bin/env python3
"""Gateway TLS benchmark: Outpost's TLS listener next to nginx terminating TLS in front of the
same backend, in one run (Python 3 standard library, wrk and openssl; loopback only).

Both sides serve an ECDSA P-256 certificate from Outpost's built-in CA and verify client
certificates against the same CA; the backend is the one nginx process of bench/gateway/run.py,
run by Outpost as a service with min-scale 1, and nginx proxies to it with upstream keep-alive.

  (A) TLS keep-alive: wrk -t2 -cN over HTTPS (PERMISSIVE: no client certificate) -> req/s, p50, p99
      and wrk -t1 -c1 -> p50 (the latency one TLS hop adds)
  (B) mTLS keep-alive: P client processes, each one HTTPS/1.1 keep-alive connection with a
      client certificate, requests back to back (Python's ssl; the client is the same for both)
      -> req/s; Outpost runs with peer authentication STRICT, nginx with ssl_verify_client on
  (C) new handshakes: `openssl s_time -new` (a full handshake per connection, no resumption),
      two clients in parallel, without and with a client certificate -> handshakes/s

Rounds are interleaved and medians reported; compare ratios within one run.

Usage: bench/gateway/tls.py [--rounds 3] [--duration 10] [--connections 64] [--mtls-clients 4]
                            [--proxy-workers N] [--outpost PATH] [--echo PATH]
Needs wrk, nginx and openssl.
"""

import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402
import run as plain  # noqa: E402  (wrk reporting, RSS helpers and the backend config)

HOST = "bench.default.localhost"
TARGETS = ["outpost", "nginx"]


def nginx_tls_config(folder, backend_port, tls_port, mtls_port, workers, certs):
    """nginx terminating TLS (and mTLS on a second port) in front of the backend."""
    proxy = folder / "nginx-tls"
    proxy.mkdir()
    (proxy / "nginx.conf").write_text(f"""worker_processes {workers};
user root;
pid {proxy}/nginx.pid;
error_log {proxy}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_certificate {certs}/server/cert.pem;
  ssl_certificate_key {certs}/server/key.pem;
  ssl_session_cache off;
  ssl_session_tickets off;
  upstream be {{
    server 127.0.0.1:{backend_port};
    keepalive 128;
    keepalive_requests 10000000;
  }}
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  server {{
    listen 127.0.0.1:{tls_port} ssl backlog=4096;
    location / {{ proxy_pass http://be; }}
  }}
  server {{
    listen 127.0.0.1:{mtls_port} ssl backlog=4096;
    ssl_verify_client on;
    ssl_client_certificate {certs}/server/ca.pem;
    location / {{ proxy_pass http://be; }}
  }}
}}
""")
    return proxy


def mtls_client(port, certs, seconds):
    """One keep-alive HTTPS connection with a client certificate, requests back to back for
    `seconds`; returns (requests, errors)."""
    context = ssl.create_default_context(cafile=f"{certs}/client/ca.pem")
    context.check_hostname = False
    context.load_cert_chain(f"{certs}/client/cert.pem", f"{certs}/client/key.pem")
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    done = errors = 0
    with socket.create_connection(("127.0.0.1", port)) as raw, context.wrap_socket(raw, server_hostname=HOST) as tls:
        reader = tls.makefile("rb")
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            tls.sendall(request)
            status = reader.readline()
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            if b" 200 " in status:
                done += 1
            else:
                errors += 1
    return done, errors


def run_mtls(port, certs, clients, seconds):
    with ProcessPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(mtls_client, [port] * clients, [certs] * clients, [seconds] * clients))
    return sum(r[0] for r in results) / seconds, sum(r[1] for r in results)


def run_s_time(port, certs, seconds, client_certificate):
    """Two `openssl s_time -new` clients in parallel; returns full handshakes per second."""
    command = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(seconds)]
    if client_certificate:
        command += ["-cert", f"{certs}/client/cert.pem", "-key", f"{certs}/client/key.pem"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
             for _ in range(2)]
    total = 0
    for proc in procs:
        out = proc.communicate(timeout=seconds + 30)[0].decode()
        counted = re.search(r"(\d+) connections in (\d+) real seconds", out)
        if not counted:
            raise RuntimeError(f"s_time gave no result for port {port}: {out}")
        total += int(counted.group(1)) / int(counted.group(2))
    return total


def main():
    parser = h.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections for (A) (default 64)")
    parser.add_argument("--mtls-clients", type=int, default=4, help="client processes for (B) (default 4)")
    parser.add_argument("--proxy-workers", type=int, default=os.cpu_count(), help="nginx workers (default: one per core)")
    args = parser.parse_args()
    h.check_binaries(args)
    for tool in ("wrk", "nginx", "openssl"):
        if not shutil.which(tool):
            print(f"error: {tool} is not installed (apt-get install wrk nginx openssl)", file=sys.stderr)
            sys.exit(2)
    h.install_signal_handlers()
    header = h.host_lines(args)
    print("\n".join(header), flush=True)
    cleanup = h.Cleanup()
    folder = Path(tempfile.mkdtemp(prefix="outpost-bench-tls-"))
    cleanup.add(lambda: shutil.rmtree(folder, ignore_errors=True))
    try:
        backend_port, tls_port, mtls_port = h.free_port(), h.free_port(), h.free_port()
        backend_dir, _ = plain.write_configs(folder, backend_port, h.free_port(), h.free_port(), args.proxy_workers, h.free_port())
        daemon = h.Daemon(args, cleanup, label="gateway-tls")
        daemon.start()
        plain.create_backend_service(daemon, backend_dir, backend_port)
        certs = folder / "certs"
        daemon.cli("cert", "issue", "--identity", "nginx", "--namespace", "outpost-system", "--dns-name", HOST,
                   "--out", str(certs / "server"))
        daemon.cli("cert", "issue", "--identity", "loadgen", "--out", str(certs / "client"))
        proxy_dir = nginx_tls_config(folder, backend_port, tls_port, mtls_port, args.proxy_workers, certs)
        nginx = subprocess.Popen(["nginx", "-p", str(proxy_dir), "-c", str(proxy_dir / "nginx.conf"),
                                  "-e", str(proxy_dir / "error.log"), "-g", "daemon off; master_process on;"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanup.add(lambda: h.stop_process(nginx))
        for port in (tls_port, mtls_port):
            if not h.wait_listening(port, timeout=10):
                raise RuntimeError(f"nginx did not listen on {port}")

        tls_urls = {"outpost": f"https://127.0.0.1:{daemon.tls_port}/", "nginx": f"https://127.0.0.1:{tls_port}/"}
        tls_ports = {"outpost": daemon.tls_port, "nginx": tls_port}
        mtls_ports = {"outpost": daemon.tls_port, "nginx": mtls_port}
        rss = {"outpost": lambda: h.status_field_kib(daemon.pid, "VmRSS") or 0, "nginx": lambda: plain.tree_rss_kib(nginx.pid)}
        idle = {t: rss[t]() for t in TARGETS}
        print("# warm-up", flush=True)
        for target in TARGETS:
            plain.run_wrk(folder, tls_urls[target], 1, 8, 2, HOST)

        keepalive = {t: [] for t in TARGETS}
        single = {t: [] for t in TARGETS}
        mutual = {t: [] for t in TARGETS}
        handshakes = {t: [] for t in TARGETS}
        mutual_handshakes = {t: [] for t in TARGETS}
        peak = {t: 0 for t in TARGETS}
        for round_index in range(args.rounds):
            print(f"# round {round_index + 1}/{args.rounds}", flush=True)
            order = TARGETS if round_index % 2 == 0 else list(reversed(TARGETS))
            daemon.cli("security", "mtls", "--mode", "PERMISSIVE")
            for target in order:
                sampler = plain.PeakSampler(rss[target])
                result = plain.run_wrk(folder, tls_urls[target], 2, args.connections, args.duration, HOST)
                peak[target] = max(peak[target], sampler.stop())
                keepalive[target].append(result)
                print(f"  tls  {target:<8} {result[1]:>9.0f} req/s  p50 {result[2]:>6.0f} us  p99 {result[3]:>6.0f} us  errors {result[4]}", flush=True)
                result = plain.run_wrk(folder, tls_urls[target], 1, 1, max(3, args.duration // 2), HOST)
                single[target].append(result)
                print(f"  c=1  {target:<8} {result[1]:>9.0f} req/s  p50 {result[2]:>6.0f} us  errors {result[4]}", flush=True)
                rate = run_s_time(tls_ports[target], certs, args.duration, False)
                handshakes[target].append(rate)
                print(f"  new  {target:<8} {rate:>9.0f} handshakes/s (TLS)", flush=True)
            daemon.cli("security", "mtls", "--mode", "STRICT")
            for target in order:
                rate, errors = run_mtls(mtls_ports[target], certs, args.mtls_clients, args.duration)
                mutual[target].append((rate, errors))
                print(f"  mtls {target:<8} {rate:>9.0f} req/s  errors {errors}", flush=True)
                rate = run_s_time(mtls_ports[target], certs, args.duration, True)
                mutual_handshakes[target].append(rate)
                print(f"  new  {target:<8} {rate:>9.0f} handshakes/s (mTLS)", flush=True)
            daemon.check_alive()

        def med(values):
            return statistics.median(values)

        out = list(header)
        out.append(f"backend: nginx return 200 (1 worker); nginx proxy with {args.proxy_workers} workers; ECDSA P-256 "
                   f"certificates from Outpost's CA on both; rounds={args.rounds} (medians); {args.duration}s per run")
        out.append("")
        rows = []
        for target in TARGETS:
            rps = med([r[1] for r in keepalive[target]])
            rows.append([target, f"{rps:.0f}", h.fmt(rps / med([r[1] for r in keepalive['nginx']])),
                         h.fmt(med([r[2] for r in keepalive[target]]) / 1000), h.fmt(med([r[3] for r in keepalive[target]]) / 1000),
                         f"{med([r[2] for r in single[target]]):.0f}",
                         sum(r[4] for r in keepalive[target]) + sum(r[4] for r in single[target])])
        out.append(f"(A) TLS keep-alive, wrk -t2 -c{args.connections} (and -c1 for the p50 of one connection)")
        out.append(h.table(["proxy", "req/s", "vs nginx", "p50 ms", "p99 ms", "c=1 p50 us", "errors"], rows))
        out.append("")
        rows = []
        for target in TARGETS:
            rps = med([r[0] for r in mutual[target]])
            rows.append([target, f"{rps:.0f}", h.fmt(rps / med([r[0] for r in mutual['nginx']])), sum(r[1] for r in mutual[target])])
        out.append(f"(B) mTLS keep-alive, {args.mtls_clients} client processes x 1 connection (Python ssl client)")
        out.append(h.table(["proxy", "req/s", "vs nginx", "errors"], rows))
        out.append("")
        rows = []
        for target in TARGETS:
            tls_rate, mtls_rate = med(handshakes[target]), med(mutual_handshakes[target])
            rows.append([target, f"{tls_rate:.0f}", h.fmt(tls_rate / med(handshakes['nginx'])),
                         f"{mtls_rate:.0f}", h.fmt(mtls_rate / med(mutual_handshakes['nginx']))])
        out.append("(C) new full handshakes per second, 2 x openssl s_time -new")
        out.append(h.table(["proxy", "TLS /s", "vs nginx", "mTLS /s", "vs nginx"], rows))
        out.append("")
        rows = [[t, h.fmt(idle[t] / 1024, 1), h.fmt(peak[t] / 1024, 1)] for t in TARGETS]
        out.append("(D) RSS, MiB (Outpost: the daemon without its worker; nginx: master + workers)")
        out.append(h.table(["proxy", "idle", "peak under TLS load"], rows))
        out.append("")
        out.append(f"loadavg at end: {h.loadavg()}")
        text = "\n".join(out) + "\n"
        print()
        print(text)
        print(f"# written to {h.write_results(args, 'gateway-tls', text)}")
    finally:
        cleanup.run()


if __name__ == "__main__":
    main()

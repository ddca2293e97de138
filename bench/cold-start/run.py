#!/usr/bin/env python3
"""Cold-start benchmark for Outpost (Python 3 standard library only; loopback only).

Measures, and prints as one table (also written to bench/results/cold-start-<UTC>.txt):

  (a) exec → listening of the workload itself: spawn outpost-echo with PORT=<free port> and
      connect-poll (~50 µs sleeps) until it accepts. The floor any platform pays.
  (b) cold start through the platform: `outpost service stop` → the worker pid is gone →
      `outpost service resume` → time to first byte of one GET through the gateway (new TCP
      connection, monotonic clock). Each answer must be 200 from a new pid.
      (a) and (b) are interleaved sample by sample (order alternates) so background load hits both.
  (c) frozen tier: service with outpost.dev/frozen-retention-period; wait until its worker is
      SIGSTOPped (/proc/PID/stat state 'T'), then time one GET (200 from the same pid).
  (d) warm: GET through the gateway to a ready worker and directly to the worker's port,
      interleaved, on a new connection each (same method as (b) and (c)).

Then it prints the platform overhead (b − a at p50 and p99) against the issue's targets, and the
daemon's own outpost_revision_cold_start_duration_seconds histogram (count/sum) from /metrics.

Usage: bench/cold-start/run.py [--samples 50] [--frozen-samples 20] [--warm-samples 200]
                               [--outpost PATH] [--echo PATH]
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep bench/lib free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness as h  # noqa: E402

WINDOW = ("autoscaling.knative.dev/window", "6s")
FROZEN = ("outpost.dev/frozen-retention-period", "5m")
STOPPED_ANNOTATION = "outpost.dev/stopped"

TARGET_OVERHEAD_P50_MS = 5.0
TARGET_TOTAL_P50_MS = 50.0
TARGET_FROZEN_P99_MS = 5.0


SPAWN_RETURN = []  # seconds from before Popen() to its return, per (a) sample


def exec_sample(echo, timeout=5.0, poll_sleep=50e-6):
    """Seconds from just before spawning outpost-echo to its first accepted connect()."""
    port = h.free_port()
    env = {"PORT": str(port), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    t0 = time.perf_counter()
    proc = subprocess.Popen([echo], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    SPAWN_RETURN.append(time.perf_counter() - t0)
    try:
        deadline = t0 + timeout
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                rc = s.connect_ex((h.LOOPBACK, port))
            finally:
                s.close()
            if rc == 0:
                return time.perf_counter() - t0
            if proc.poll() is not None:
                raise RuntimeError(f"outpost-echo exited with {proc.returncode} before listening")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"outpost-echo did not listen on {port} within {timeout}s")
            time.sleep(poll_sleep)
    finally:
        h.stop_process(proc, term_timeout=2.0)


class ColdRunner:
    """(b): stop → pid gone → resume → one timed GET, on service `name`."""

    def __init__(self, daemon, name, notes):
        self.d = daemon
        self.name = name
        self.notes = notes
        self.pid = None
        self.seen = set()
        self.retries_503 = 0
        self.stop_to_gone = []
        self.bad = []
        self.checked_api = False

    def prime(self):
        response = self.d.get(self.name)
        if response.status != 200:
            raise RuntimeError(f"first GET to {self.name}: {response.status} {response.body[:200]!r}")
        self.pid = response.json()["pid"]
        self.seen.add(self.pid)
        self.d.note_worker(self.pid)
        return response

    def annotations(self):
        return (self.d.service(self.name).get("metadata") or {}).get("annotations") or {}

    def sample(self):
        old = self.pid
        t_stop = time.perf_counter()
        self.d.cli("service", "stop", self.name)
        if not self.checked_api:
            shown = self.annotations().get(STOPPED_ANNOTATION)
            self.notes.append(f"after `service stop`, GET service shows metadata.annotations[{STOPPED_ANNOTATION}]"
                              f" = {shown!r}" + ("" if shown else " (the API does not show that the service is held)"))
        if not h.wait_until(lambda: self.d.check_alive() and h.pid_gone(old), timeout=20.0, interval=0.0005):
            raise RuntimeError(f"worker pid {old} still alive 20 s after `service stop`")
        self.stop_to_gone.append(time.perf_counter() - t_stop)
        self.d.cli("service", "resume", self.name)
        if not self.checked_api:
            self.checked_api = True
            if STOPPED_ANNOTATION in self.annotations():
                self.notes.append("after `service resume`, the stopped annotation is still shown")
        # Proceed at once; a 503 here means resume was not yet visible to the gateway.
        for attempt in range(100):
            response = self.d.get(self.name, timeout=30.0)
            if response.status == 503 and b"ServiceStopped" in response.body:
                self.retries_503 += 1
                time.sleep(0.01)
                continue
            break
        if response.status != 200:
            self.bad.append(f"status {response.status}: {response.body[:200]!r}")
            raise RuntimeError(f"cold GET answered {response.status}: {response.body[:300]!r}")
        pid = response.json()["pid"]
        self.d.note_worker(pid)
        if pid == old or pid in self.seen:
            self.bad.append(f"pid {pid} not new (previous {old})")
        self.seen.add(pid)
        self.pid = pid
        return response.ttfb


def frozen_samples(daemon, name, count, notes, log):
    """(c): returns (ttfb list, wait-until-frozen list)."""
    daemon.create_service(name, annotations=[WINDOW, FROZEN])
    first = daemon.get(name)
    if first.status != 200:
        raise RuntimeError(f"first GET to {name}: {first.status} {first.body[:200]!r}")
    pid = first.json()["pid"]
    daemon.note_worker(pid)
    last_request = time.perf_counter()
    ttfbs, waits, problems = [], [], []
    for i in range(count):
        state = h.wait_until(lambda: daemon.check_alive() and h.proc_state(pid) == "T", timeout=60.0, interval=0.005)
        if not state:
            raise RuntimeError(f"worker pid {pid} of {name} not frozen (state {h.proc_state(pid)!r}) "
                               f"60 s after its last request; workers: {daemon.workers()}")
        waits.append(time.perf_counter() - last_request)
        response = daemon.get(name)
        last_request = time.perf_counter()
        if response.status != 200:
            problems.append(f"sample {i}: status {response.status} {response.body[:200]!r}")
            raise RuntimeError(f"frozen GET answered {response.status}: {response.body[:300]!r}")
        got = response.json()["pid"]
        daemon.note_worker(got)
        if got != pid:
            problems.append(f"sample {i}: answered by pid {got}, the frozen worker was {pid}")
            pid = got
        after = h.proc_state(pid)
        if after == "T":
            problems.append(f"sample {i}: pid {pid} still in state T after answering")
        ttfbs.append(response.ttfb)
        log(f"  frozen {i + 1}/{count}: {response.ttfb * 1000:.2f} ms (frozen after {waits[-1]:.2f} s)")
    notes.extend(problems)
    return ttfbs, waits


def warm_samples(daemon, name, count):
    """(d): interleaved gateway / direct GETs to one ready worker."""
    response = daemon.get(name)
    if response.status != 200:
        raise RuntimeError(f"warm GET: {response.status}")
    info = response.json()
    pid, port = info["pid"], int(info["env"]["PORT"])
    gateway, direct, problems = [], [], []
    for i in range(count):
        order = ("gw", "direct") if i % 2 == 0 else ("direct", "gw")
        for which in order:
            if which == "gw":
                r = daemon.get(name)
                if r.status != 200 or r.json()["pid"] != pid:
                    problems.append(f"gateway sample {i}: status {r.status} pid {r.json().get('pid') if r.status == 200 else '-'}")
                gateway.append(r.ttfb)
            else:
                r = h.raw_get(port, "/", host=f"{name}.default.localhost")
                if r.status != 200:
                    problems.append(f"direct sample {i}: status {r.status}")
                direct.append(r.ttfb)
    return gateway, direct, problems, pid, port


def metrics_lines(daemon):
    text = daemon.metrics_text()
    lines = []
    for metric in ("outpost_revision_cold_start_duration_seconds", "outpost_revision_activation_wait_duration_seconds"):
        counts = {tuple(sorted(l.items())): v for l, v in h.parse_metric(text, metric + "_count")}
        sums = {tuple(sorted(l.items())): v for l, v in h.parse_metric(text, metric + "_sum")}
        for key in sorted(counts):
            labels = dict(key)
            count, total = counts[key], sums.get(key, float("nan"))
            mean = total / count * 1000 if count else float("nan")
            label_text = ",".join(f"{k}={v}" for k, v in labels.items() if k != "namespace")
            lines.append(f"  {metric}{{{label_text}}}: count={int(count)} sum={total:.6f}s mean={mean:.2f} ms")
        if not counts:
            lines.append(f"  {metric}: not present in /metrics")
    return lines


def main():
    parser = h.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=50, help="samples of (a) and (b) each (default 50)")
    parser.add_argument("--frozen-samples", type=int, default=20, help="samples of (c); each takes ~7 s (default 20)")
    parser.add_argument("--warm-samples", type=int, default=200, help="samples of (d), per path (default 200)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed (a)+(b) rounds first (default 3)")
    args = parser.parse_args()
    h.check_binaries(args)
    h.install_signal_handlers()
    if args.samples < 1 or args.warm_samples < 1 or args.frozen_samples < 0:
        parser.error("sample counts must be positive")

    header = h.host_lines(args)
    print("\n".join(header), flush=True)
    log = lambda text: print(text, flush=True)  # noqa: E731
    notes = []
    cleanup = h.Cleanup()
    began = time.monotonic()
    try:
        daemon = h.Daemon(args, cleanup, grace="100ms", label="coldstart")
        daemon.start()
        log(f"daemon pid {daemon.pid}: gateway 127.0.0.1:{daemon.gateway_port}, admin 127.0.0.1:{daemon.admin_port}")

        # (a) + (b), interleaved
        daemon.create_service("cold", annotations=[WINDOW])
        cold = ColdRunner(daemon, "cold", notes)
        cold.prime()
        for _ in range(args.warmup):
            exec_sample(args.echo)
            cold.sample()
        cold.bad.clear()
        cold.stop_to_gone.clear()
        SPAWN_RETURN.clear()
        execs, colds = [], []
        for i in range(args.samples):
            if i % 2 == 0:
                execs.append(exec_sample(args.echo))
                colds.append(cold.sample())
            else:
                colds.append(cold.sample())
                execs.append(exec_sample(args.echo))
            if (i + 1) % 10 == 0 or i + 1 == args.samples:
                log(f"  (a)+(b) {i + 1}/{args.samples}: exec {execs[-1] * 1000:.2f} ms, cold {colds[-1] * 1000:.2f} ms")
        if cold.retries_503:
            notes.append(f"(b) {cold.retries_503} GETs right after `service resume` got 503 ServiceStopped "
                         f"and were retried after 10 ms (the timed GET is the first 200)")
        notes.extend(f"(b) {problem}" for problem in cold.bad)

        # (d) warm, right after (b) so the worker is ready
        gateway, direct, problems, wpid, wport = warm_samples(daemon, "cold", args.warm_samples)
        notes.extend(f"(d) {p}" for p in problems)
        log(f"  (d) done: worker pid {wpid} port {wport}")

        # (c) frozen tier
        frozen, frozen_waits = [], []
        if args.frozen_samples:
            frozen, frozen_waits = frozen_samples(daemon, "frozen", args.frozen_samples, notes, log)

        metric_lines = metrics_lines(daemon)
    finally:
        cleanup.run()
    elapsed = time.monotonic() - began

    rows = []
    stats = {}
    for key, label, values in (
        ("exec", "(a) outpost-echo exec -> listening (no platform)", execs),
        ("cold", "(b) cold start via gateway (stop/resume), TTFB", colds),
        ("frozen", "(c) frozen tier resume (SIGCONT) via gateway, TTFB", frozen),
        ("warm_gw", "(d) warm, via gateway, TTFB (new conn)", gateway),
        ("warm_direct", "(d) warm, direct to worker port, TTFB (new conn)", direct),
    ):
        stats[key] = h.summary_ms(values)
        n, p50, p99, lo, hi = stats[key]
        rows.append([label, n, h.fmt(p50), h.fmt(p99), h.fmt(lo), h.fmt(hi)])
    out = ["", "cold-start benchmark (times in ms; p99 is interpolated, so with n=50 it is close to max)",
           h.table(["what", "n", "p50", "p99", "min", "max"], rows)]

    overhead_p50 = stats["cold"][1] - stats["exec"][1]
    overhead_p99 = stats["cold"][2] - stats["exec"][2]
    gw_hop = stats["warm_gw"][1] - stats["warm_direct"][1]
    out += ["", "derived",
            h.table(["quantity", "ms"], [
                ["platform overhead p50 = (b) p50 - (a) p50", h.fmt(overhead_p50)],
                ["platform overhead p99 = (b) p99 - (a) p99", h.fmt(overhead_p99)],
                ["gateway hop, warm p50 = (d) gateway - (d) direct", h.fmt(gw_hop)],
                ["(a) of which Python's Popen() call (spawn until return), p50", h.fmt(h.summary_ms(SPAWN_RETURN)[1])],
                ["(b) worker stop: `service stop` -> pid gone, p50", h.fmt(h.summary_ms(cold.stop_to_gone)[1])],
            ])]

    def verdict(value, limit):
        return "-" if value != value else ("PASS" if value <= limit else "MISS")
    frozen_p99 = stats["frozen"][2]
    out += ["", "targets (from the issue)",
            h.table(["target", "limit ms", "measured ms", "result"], [
                ["cold-start overhead p50 ((b) - (a))", h.fmt(TARGET_OVERHEAD_P50_MS, 1), h.fmt(overhead_p50), verdict(overhead_p50, TARGET_OVERHEAD_P50_MS)],
                ["cold-start total p50 ((b))", h.fmt(TARGET_TOTAL_P50_MS, 1), h.fmt(stats["cold"][1]), verdict(stats["cold"][1], TARGET_TOTAL_P50_MS)],
                ["frozen resume p99 ((c))", h.fmt(TARGET_FROZEN_P99_MS, 1), h.fmt(frozen_p99), verdict(frozen_p99, TARGET_FROZEN_P99_MS)],
            ])]
    out += ["", "daemon histograms from /metrics (whole run, including warm-up and the first start):"] + metric_lines
    if frozen_waits:
        out.append(f"(c) time from the last request until the worker was seen in state T: "
                   f"median {h.fmt(h.summary_ms(frozen_waits)[1] / 1000, 2)} s (window 6s + grace 100ms)")
    out += ["", "notes:"] + ([f"  - {n}" for n in notes] or ["  - none: every answer was 200 from the expected pid"])
    out += ["", f"loadavg at end: {h.loadavg()}   wall time: {elapsed:.0f} s"]
    text = "\n".join(header + out)
    print("\n".join(out))

    raw = ["", "raw samples (ms):"]
    for name, values in (("exec", execs), ("cold", colds), ("frozen", frozen), ("warm_gateway", gateway),
                         ("warm_direct", direct), ("stop_to_gone", cold.stop_to_gone)):
        raw.append(f"{name}: " + " ".join(f"{v * 1000:.3f}" for v in values))
    path = h.write_results(args, "cold-start", text + "\n" + "\n".join(raw))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)

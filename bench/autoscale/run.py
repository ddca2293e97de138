#!/usr/bin/env python3
"""Autoscaler step-load benchmark for Outpost (Python 3 standard library only; loopback only).

One daemon (scale-to-zero grace 500ms), one service with autoscaling.knative.dev/target=10,
target-utilization-percentage=100 and window=6s. After the service has scaled to zero, closed-loop
clients (threads, keep-alive, GET /?delay=200ms through the gateway) follow the phases, by
default 40 clients for 30 s, then 8 for 30 s, then 0 for 30 s. Every 0.5 s the revision's status
(desiredReplicas, actualReplicas, panicMode, lastScaleReason), the clients' measured in-flight
requests and the live worker processes are sampled.

Prints (and writes to bench/results/autoscale-<UTC>.txt) a one-row-per-second timeline with the
prediction ceil(clients / target), the time from each step until desired and actual first equal
the prediction (and from when they stay equal to the end of the phase), and the status counts.

Usage: bench/autoscale/run.py [--phases 40:30,8:30,0:30] [--target 10] [--delay 200ms]
                              [--outpost PATH] [--echo PATH]
"""

import collections
import http.client
import math
import statistics
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep bench/lib free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness as h  # noqa: E402

SERVICE = "step"


def parse_phases(text):
    phases = []
    for part in text.split(","):
        clients, _, seconds = part.partition(":")
        phases.append((int(clients), float(seconds)))
    if not phases or any(c < 0 or s <= 0 for c, s in phases):
        raise ValueError(f"bad --phases {text!r}")
    return phases


class Load:
    """Closed-loop client threads; thread i sends while i < self.clients."""

    def __init__(self, port, host, path, max_clients, hard_deadline):
        self.port, self.host, self.path = port, host, path
        self.clients = 0
        self.phase = -1
        self.stop = threading.Event()
        self.hard_deadline = hard_deadline
        self.lock = threading.Lock()
        self.in_flight = 0
        self.statuses = collections.defaultdict(collections.Counter)   # phase -> Counter
        self.latencies = collections.defaultdict(list)                 # phase -> [seconds]
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(max_clients)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, index):
        conn = None
        while not self.stop.is_set() and time.monotonic() < self.hard_deadline:
            if index >= self.clients:
                if conn is not None:
                    conn.close()
                    conn = None
                time.sleep(0.01)
                continue
            phase = self.phase
            with self.lock:
                self.in_flight += 1
            t0 = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(h.LOOPBACK, self.port, timeout=30)
                conn.request("GET", self.path, headers={"Host": self.host})
                response = conn.getresponse()
                response.read()
                outcome = response.status
                if response.will_close:
                    conn.close()
                    conn = None
            except Exception as error:  # counted, then the connection is replaced
                outcome = f"error:{type(error).__name__}"
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            finally:
                with self.lock:
                    self.in_flight -= 1
            elapsed = time.perf_counter() - t0
            with self.lock:
                self.statuses[phase][outcome] += 1
                if outcome == 200:
                    self.latencies[phase].append(elapsed)
        if conn is not None:
            conn.close()

    def finish(self, timeout=40.0):
        self.clients = 0
        self.stop.set()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in self.threads)


def first_reach(samples, start, end, key, want):
    """(seconds until first sample == want, seconds until it stays == want to the end) or None."""
    window = [s for s in samples if start <= s["t"] < end]
    first = next((s["t"] - start for s in window if s[key] == want), None)
    settled = None
    for s in reversed(window):
        if s[key] != want:
            break
        settled = s["t"] - start
    return first, settled


def main():
    parser = h.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="40:30,8:30,0:30",
                        help="clients:seconds,... after the service is at zero (default 40:30,8:30,0:30)")
    parser.add_argument("--target", type=int, default=10, help="autoscaling.knative.dev/target (default 10)")
    parser.add_argument("--utilization", type=int, default=100,
                        help="autoscaling.knative.dev/target-utilization-percentage (default 100)")
    parser.add_argument("--window", default="6s", help="autoscaling.knative.dev/window (default 6s)")
    parser.add_argument("--grace", default="500ms", help="daemon --scale-to-zero-grace-period (default 500ms)")
    parser.add_argument("--delay", default="200ms", help="per-request delay of the echo workload (default 200ms)")
    parser.add_argument("--interval", type=float, default=0.5, help="sampling interval in seconds (default 0.5)")
    args = parser.parse_args()
    h.check_binaries(args)
    h.install_signal_handlers()
    phases = parse_phases(args.phases)
    capacity = args.target * args.utilization / 100.0

    header = h.host_lines(args)
    header.append(f"service: target={args.target} utilization={args.utilization}% window={args.window}; "
                  f"daemon grace {args.grace}; clients GET /?delay={args.delay} closed loop, keep-alive; "
                  f"phases {args.phases}")
    print("\n".join(header), flush=True)
    cleanup = h.Cleanup()
    samples = []
    phase_starts = []
    began = time.monotonic()
    load = None
    try:
        daemon = h.Daemon(args, cleanup, grace=args.grace, label="autoscale")
        daemon.start()
        revision = daemon.create_service(SERVICE, annotations=[
            ("autoscaling.knative.dev/target", str(args.target)),
            ("autoscaling.knative.dev/target-utilization-percentage", str(args.utilization)),
            ("autoscaling.knative.dev/window", args.window),
        ])
        print(f"daemon pid {daemon.pid}, revision {revision}; waiting for scale to zero", flush=True)
        t_zero = time.monotonic()
        at_zero = h.wait_until(
            lambda: (daemon.revision(revision)["status"].get("actualReplicas", 0) == 0 and not daemon.workers()),
            timeout=90.0, interval=0.1)
        if not at_zero:
            raise RuntimeError(f"revision not at zero 90 s after create: {daemon.revision(revision)['status']}")
        print(f"at zero after {time.monotonic() - t_zero:.1f} s", flush=True)

        total = sum(seconds for _, seconds in phases)
        load = Load(daemon.gateway_port, f"{SERVICE}.default.localhost", f"/?delay={args.delay}",
                    max(c for c, _ in phases), hard_deadline=time.monotonic() + total + 60)
        cleanup.add(lambda: load.finish())
        load.start()
        t0 = time.monotonic()
        boundaries = []
        acc = 0.0
        for clients, seconds in phases:
            boundaries.append((acc, acc + seconds, clients))
            acc += seconds
        next_sample = t0
        phase_index = -1
        while True:
            now = time.monotonic()
            t = now - t0
            if t >= total:
                break
            current = next(i for i, (a, b, _) in enumerate(boundaries) if a <= t < b)
            if current != phase_index:
                phase_index = current
                load.phase = current
                load.clients = boundaries[current][2]
                phase_starts.append(t)
                print(f"t={t:5.1f}s  -> {load.clients} clients", flush=True)
            try:
                status = daemon.revision(revision)["status"]
            except Exception as error:
                status = {"error": str(error)}
            workers = daemon.workers()
            running = sum(1 for pid in workers if h.proc_state(pid) not in ("T", None))
            samples.append({
                "t": time.monotonic() - t0, "phase": current, "clients": load.clients,
                "in_flight": load.in_flight,
                "desired": status.get("desiredReplicas"), "actual": status.get("actualReplicas"),
                "panic": status.get("panicMode"), "reason": status.get("lastScaleReason") or "",
                "procs": running,
            })
            next_sample += args.interval
            time.sleep(max(0.0, next_sample - time.monotonic()))
        stuck = load.finish()
        if stuck:
            print(f"warning: {stuck} client threads still running after 40 s", file=sys.stderr)
    finally:
        cleanup.run()
    elapsed = time.monotonic() - began

    out = ["", f"timeline (one row per second: last sample of the second; in-flight = mean of the "
               f"second's samples; pred = ceil(clients / {capacity:g}); procs = running worker processes)"]
    rows = []
    by_second = collections.OrderedDict()
    for s in samples:
        by_second.setdefault(int(s["t"]), []).append(s)
    for second, group in by_second.items():
        last = group[-1]
        pred = math.ceil(last["clients"] / capacity)
        rows.append([second, last["clients"], h.fmt(statistics.mean(g["in_flight"] for g in group), 1),
                     last["desired"], last["actual"], last["procs"], pred,
                     "yes" if any(g["panic"] for g in group) else "no", last["reason"][:60]])
    out.append(h.table(["t s", "clients", "in-flight", "desired", "actual", "procs", "pred", "panic", "lastScaleReason"],
                       rows, align=["r"] * 8 + ["l"]))

    out += ["", "time from each step until desired / actual == prediction "
                "(first = first sample equal; settled = from when it stays equal to the phase's end)"]
    step_rows = []
    ends = phase_starts[1:] + [float("inf")]
    for index, (start, end) in enumerate(zip(phase_starts, ends)):
        clients = phases[index][0]
        pred = math.ceil(clients / capacity)
        d_first, d_settled = first_reach(samples, start, end, "desired", pred)
        a_first, a_settled = first_reach(samples, start, end, "actual", pred)
        in_phase = [s for s in samples if start <= s["t"] < end]
        max_desired = max((s["desired"] or 0 for s in in_phase), default=None)
        max_actual = max((s["actual"] or 0 for s in in_phase), default=None)
        panic_s = sum(args.interval for s in in_phase if s["panic"])
        step_rows.append([f"{index}: -> {clients} clients @ t={start:.1f}s", pred,
                          h.fmt(d_first, 1), h.fmt(d_settled, 1), h.fmt(a_first, 1), h.fmt(a_settled, 1),
                          max_desired, max_actual, h.fmt(panic_s, 1)])
    out.append(h.table(["step", "pred", "desired first s", "desired settled s", "actual first s",
                        "actual settled s", "max desired", "max actual", "panic s"], step_rows))

    out += ["", "requests per phase (status counts; latency of 200s in ms)"]
    req_rows = []
    for index, (clients, seconds) in enumerate(phases):
        counts = load.statuses.get(index, {}) if load else {}
        lat = load.latencies.get(index, []) if load else []
        n, p50, p99, _, hi = h.summary_ms(lat)
        non200 = sum(v for k, v in counts.items() if k != 200)
        req_rows.append([f"{index}: {clients} clients x {seconds:g}s", sum(counts.values()), counts.get(200, 0), non200,
                         " ".join(f"{k}={v}" for k, v in sorted(counts.items(), key=str) if k != 200) or "-",
                         h.fmt(len(lat) / seconds, 1), h.fmt(p50), h.fmt(p99), h.fmt(hi)])
    out.append(h.table(["phase", "requests", "200", "non-200", "non-200 detail", "req/s", "p50", "p99", "max"], req_rows))
    out += ["", f"loadavg at end: {h.loadavg()}   wall time: {elapsed:.0f} s"]
    print("\n".join(out))
    raw = ["", "raw samples: t clients in_flight desired actual procs panic reason"]
    raw += [f"{s['t']:.2f} {s['clients']} {s['in_flight']} {s['desired']} {s['actual']} {s['procs']} "
            f"{s['panic']} {s['reason']}" for s in samples]
    path = h.write_results(args, "autoscale", "\n".join(header + out + raw))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)

#!/usr/bin/env python3
"""Footprint benchmark for Outpost (Python 3 standard library only; loopback only).

Measures, prints as a table and writes to bench/results/footprint-<UTC>.txt:

  * binary size: as built, and stripped (a temporary copy run through `strip`);
  * start-up: spawn `outpost serve` (fresh data dir each time) → first 200 on GET /healthz,
    N times (default 10): median and max; also SIGTERM → exit;
  * daemon RSS (VmRSS from /proc/PID/status) and CPU:
      - idle, no services, 3 s after /healthz answered;
      - ten services (window 6s, daemon grace 100ms) all scaled to zero: every revision shows
        actualReplicas 0 and no outpost-echo child is alive, then 3 s settle;
      - the ten services each serving one request (ten workers ready), measured 1 s after the
        last answer; then again once they are all back at zero (+3 s settle).

Usage: bench/footprint/run.py [--startups 10] [--services 10] [--outpost PATH] [--echo PATH]
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep bench/lib free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import harness as h  # noqa: E402

WINDOW = ("autoscaling.knative.dev/window", "6s")


def stripped_size(binary):
    strip = shutil.which("strip")
    if not strip:
        return None, "strip not found on PATH"
    with tempfile.TemporaryDirectory(prefix="outpost-bench-strip-") as tmp:
        copy = os.path.join(tmp, "outpost")
        shutil.copy2(binary, copy)
        done = subprocess.run([strip, copy], capture_output=True, timeout=120)
        if done.returncode != 0:
            return None, done.stderr.decode().strip()
        return os.path.getsize(copy), None


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def cpu_ms(ticks):
    return ticks * 1000.0 / h.clock_ticks()


def snapshot(daemon, wait):
    """Sleeps `wait` seconds, then reads the daemon's memory; CPU is what it used while waiting."""
    before = h.proc_stat(daemon.pid)
    time.sleep(wait)
    stat = h.proc_stat(daemon.pid)
    return {
        "wait": wait,
        "cpu_ms": cpu_ms(stat[2] - before[2]) if stat and before else None,
        "rss": h.status_field_kib(daemon.pid, "VmRSS"),
        "hwm": h.status_field_kib(daemon.pid, "VmHWM"),
        "threads": len(os.listdir(f"/proc/{daemon.pid}/task")),
        "workers": daemon.workers(),
    }


def all_at_zero(daemon, revisions):
    if daemon.workers():
        return False
    return all(daemon.revision(r)["status"].get("actualReplicas", 0) == 0 for r in revisions)


def main():
    parser = h.base_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--startups", type=int, default=10, help="start-up samples (default 10)")
    parser.add_argument("--services", type=int, default=10, help="services for the RSS rows (default 10)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to settle before reading RSS (default 3)")
    args = parser.parse_args()
    h.check_binaries(args)
    h.install_signal_handlers()

    header = h.host_lines(args)
    print("\n".join(header), flush=True)
    began = time.monotonic()
    out = []

    size = os.path.getsize(args.outpost)
    stripped, strip_error = stripped_size(args.outpost)
    echo_size = os.path.getsize(args.echo)

    startups, shutdowns = [], []
    rss_rows = []
    notes = []
    for i in range(args.startups):
        cleanup = h.Cleanup()
        try:
            daemon = h.Daemon(args, cleanup, grace="100ms", label="startup")
            startups.append(daemon.wait_healthy(timeout=20.0, sleep=0.0005))
            t0 = time.perf_counter()
            h.stop_process(daemon.proc)
            shutdowns.append(time.perf_counter() - t0)
            if daemon.proc.returncode not in (0, -signal.SIGTERM):
                notes.append(f"start-up {i}: daemon exited {daemon.proc.returncode} on SIGTERM")
        finally:
            cleanup.run()
        print(f"  start-up {i + 1}/{args.startups}: {startups[-1] * 1000:.1f} ms to /healthz 200, "
              f"SIGTERM -> exit {shutdowns[-1] * 1000:.1f} ms", flush=True)

    cleanup = h.Cleanup()
    try:
        daemon = h.Daemon(args, cleanup, grace="100ms", label="footprint")
        daemon.start()
        idle = snapshot(daemon, args.settle)
        rss_rows.append(["idle, no services", idle])
        print(f"  idle: VmRSS {mib(idle['rss'])} MiB", flush=True)

        revisions = []
        t_create = time.monotonic()
        for i in range(args.services):
            revisions.append(daemon.create_service(f"svc{i}", annotations=[WINDOW]))
        print(f"  created {args.services} services in {time.monotonic() - t_create:.1f} s; "
              f"waiting for scale to zero", flush=True)
        t_wait = time.monotonic()
        if not h.wait_until(lambda: all_at_zero(daemon, revisions), timeout=120.0, interval=0.2):
            raise RuntimeError(f"not all at zero after 120 s; workers {daemon.workers()}")
        zero_after = time.monotonic() - t_wait
        rss_rows.append([f"{args.services} services, all scaled to zero", snapshot(daemon, args.settle)])
        print(f"  all at zero after {zero_after:.1f} s; VmRSS {mib(rss_rows[-1][1]['rss'])} MiB", flush=True)

        pids = set()
        for i in range(args.services):
            response = daemon.get(f"svc{i}")
            if response.status != 200:
                raise RuntimeError(f"svc{i}: {response.status} {response.body[:200]!r}")
            pids.add(response.json()["pid"])
            daemon.note_worker(response.json()["pid"])
        ready = snapshot(daemon, 1.0)
        worker_rss = [h.status_field_kib(pid, "VmRSS") or 0 for pid in ready["workers"]]
        rss_rows.append([f"{args.services} services, one request each, workers ready (+1 s)", ready])
        print(f"  {len(ready['workers'])} workers ready; daemon VmRSS {mib(ready['rss'])} MiB", flush=True)
        if len(pids) != args.services:
            notes.append(f"{args.services} requests were answered by {len(pids)} distinct pids")

        t_wait = time.monotonic()
        if not h.wait_until(lambda: all_at_zero(daemon, revisions), timeout=120.0, interval=0.2):
            raise RuntimeError(f"not all back at zero after 120 s; workers {daemon.workers()}")
        back_after = time.monotonic() - t_wait
        rss_rows.append([f"{args.services} services, back at zero after serving (+{args.settle:g} s)",
                         snapshot(daemon, args.settle)])
    finally:
        cleanup.run()
    elapsed = time.monotonic() - began

    out += ["", "binary",
            h.table(["file", "bytes", "MiB"], [
                ["outpost (as built)", size, f"{size / 2**20:.1f}"],
                ["outpost (stripped copy)", stripped if stripped else f"- ({strip_error})",
                 f"{stripped / 2**20:.1f}" if stripped else "-"],
                ["outpost-echo (as built)", echo_size, f"{echo_size / 2**20:.2f}"],
            ])]
    s_n, s_p50, _, s_min, s_max = h.summary_ms(startups)
    d_n, d_p50, _, _, d_max = h.summary_ms(shutdowns)
    out += ["", "start-up and shut-down (fresh data dir each time)",
            h.table(["quantity", "n", "median ms", "min ms", "max ms"], [
                ["spawn `outpost serve` -> first 200 on /healthz", s_n, h.fmt(s_p50, 1), h.fmt(s_min, 1), h.fmt(s_max, 1)],
                ["SIGTERM -> exit (no services)", d_n, h.fmt(d_p50, 1), "-", h.fmt(d_max, 1)],
            ])]
    rows = []
    for label, snap in rss_rows:
        cpu = "-" if snap["cpu_ms"] is None else f"{snap['cpu_ms']:.0f} in {snap['wait']:g} s"
        rows.append([label, mib(snap["rss"]), mib(snap["hwm"]), snap["threads"], len(snap["workers"]), cpu])
    out += ["", "daemon memory (VmRSS / VmHWM from /proc/PID/status; threads; live workers; "
                "daemon CPU ms (utime+stime, 10 ms ticks) used during the wait before the reading)",
            h.table(["state", "VmRSS MiB", "VmHWM MiB", "threads", "workers", "daemon CPU"], rows)]
    out.append(f"worker (outpost-echo) VmRSS while ready: median {mib(statistics.median(worker_rss)) if worker_rss else '-'} MiB, "
               f"sum {mib(sum(worker_rss))} MiB over {len(worker_rss)} workers")
    out.append(f"scale to zero (window 6s, grace 100ms): all {args.services} at zero {zero_after:.1f} s after the last create "
               f"returned ready; {back_after:.1f} s after the last request")
    out += ["", "notes:"] + ([f"  - {n}" for n in notes] or ["  - none"])
    out += ["", f"loadavg at end: {h.loadavg()}   wall time: {elapsed:.0f} s"]
    print("\n".join(out))
    raw = ["", "raw start-up ms: " + " ".join(f"{v * 1000:.1f}" for v in startups),
           "raw shut-down ms: " + " ".join(f"{v * 1000:.1f}" for v in shutdowns)]
    path = h.write_results(args, "footprint", "\n".join(header + out + raw))
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        sys.exit(130)

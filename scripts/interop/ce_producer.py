#!/usr/bin/env python3
"""Sends CloudEvents to an Outpost broker ingress, for the eventing tests.

  sdk       one event in binary mode and one in structured mode, built with the CloudEvents
            Python SDK (to_binary / to_structured); prints "binary <status>" and "structured <status>"
  numbered  events "<prefix>-<n>" for n = 0, 1, ... with --threads senders for --seconds seconds;
            every id that got a 202 is appended to --acked (one line each, flushed). A request
            that fails (the daemon may be down) is retried with the same id until it gets an answer.

Common: --port (gateway), --host (default broker-ingress.localhost), --path (/<namespace>/<broker>).
"""

import argparse
import http.client
import itertools
import signal
import threading
import time

from cloudevents.http import CloudEvent, to_binary, to_structured


def post(port, host, path, headers, body, timeout=5.0):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={**headers, "Host": host})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def sdk(args):
    event = CloudEvent({"type": "dev.outpost.test.sdk", "source": "/python/sdk", "id": "sdk-binary"}, {"mode": "binary"})
    headers, body = to_binary(event)
    print("binary", post(args.port, args.host, args.path, headers, body), flush=True)
    event = CloudEvent({"type": "dev.outpost.test.sdk", "source": "/python/sdk", "id": "sdk-structured"}, {"mode": "structured"})
    headers, body = to_structured(event)
    print("structured", post(args.port, args.host, args.path, headers, body), flush=True)


def numbered(args):
    counter = itertools.count()
    lock = threading.Lock()
    acked = open(args.acked, "a", buffering=1)
    deadline = time.monotonic() + args.seconds
    payload = b"x" * args.size

    def sender():
        while time.monotonic() < deadline:
            with lock:
                n = next(counter)
            event_id = f"{args.prefix}-{n}"
            headers = {"ce-specversion": "1.0", "ce-type": "dev.outpost.test.numbered", "ce-source": "/python/numbered",
                       "ce-id": event_id, "Content-Type": "application/octet-stream"}
            while True:
                try:
                    status = post(args.port, args.host, args.path, headers, payload, timeout=2.0)
                except OSError:
                    if time.monotonic() > deadline + 30:
                        return
                    time.sleep(0.02)
                    continue
                if status == 202:
                    with lock:
                        acked.write(event_id + "\n")
                    break
                if status in (429, 503):
                    time.sleep(0.05)
                    continue
                break

    threads = [threading.Thread(target=sender) for _ in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("done", flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["sdk", "numbered"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="broker-ingress.localhost")
    parser.add_argument("--path", default="/default/default")
    parser.add_argument("--acked")
    parser.add_argument("--prefix", default="n")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    sdk(args) if args.mode == "sdk" else numbered(args)


if __name__ == "__main__":
    main()

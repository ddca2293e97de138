#!/usr/bin/env python3
"""A CloudEvents subscriber process for Outpost's eventing tests.

Parses every request with the CloudEvents Python SDK (`from_http`) and appends one JSON line per
request to --log: the path, the wall time, the parsed attributes, the data as text and the raw
headers. What it answers depends on the path:

  /ok      204 No Content
  /fail    500 with a short text body (a subscriber that keeps failing)
  /reject  400 (a permanent failure: no retries)
  /reply   200 with a reply CloudEvent in binary mode: type "<type>.reply", same data
  /junk    200 with a body that is not a CloudEvent

Usage: ce_subscriber.py [--port PORT] --log FILE   (listens on 127.0.0.1 only; the port defaults
to $PORT, so it also runs as an Outpost service)
"""

import argparse
import json
import os
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cloudevents.http import from_http

LOCK = threading.Lock()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")), help="default: $PORT (as a workload)")
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    # A parent may have blocked these (they are inherited); the tests stop us with them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
    log = open(args.log, "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = {"path": self.path, "t": time.time(), "headers": headers}
            try:
                event = from_http(headers, body)
                attributes = dict(event.get_attributes())
                record["event"] = {k: (v if isinstance(v, (str, int, bool)) else str(v)) for k, v in attributes.items()}
                data = event.get_data()
                if isinstance(data, (bytes, bytearray)):
                    record["data"] = bytes(data).decode("utf-8", "replace")
                elif data is not None:
                    record["data"] = data if isinstance(data, str) else json.dumps(data, sort_keys=True)
            except Exception as error:  # the test asserts on what arrived, so record the failure
                record["error"] = str(error)
            with LOCK:
                log.write(json.dumps(record, sort_keys=True) + "\n")
            path = self.path.split("?")[0]
            if path == "/fail":
                self.answer(500, b"subscriber failure", {"Content-Type": "text/plain"})
            elif path == "/reject":
                self.answer(400, b"bad event", {"Content-Type": "text/plain"})
            elif path == "/reply" and "event" in record:
                reply = {
                    "ce-specversion": "1.0",
                    "ce-id": str(uuid.uuid4()),
                    "ce-source": "/subscriber/reply",
                    "ce-type": record["event"]["type"] + ".reply",
                    "Content-Type": headers.get("content-type", "application/json"),
                }
                self.answer(200, body, reply)
            elif path == "/junk":
                self.answer(200, b"this is not an event", {"Content-Type": "text/plain"})
            else:
                self.answer(204, b"", {})

        def answer(self, status, body, headers):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

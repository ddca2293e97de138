#!/usr/bin/env python3
"""A small WebSocket client (standard library only) for the gateway's pass-through tests.

    websocket_client.py PORT HOST            handshake, echo of a text, a binary and a ping
                                             frame, then a clean close; prints "echo ok"
    websocket_client.py PORT HOST --idle S   handshake and one echo, then waits silently for up
                                             to S seconds; prints "closed after N.Ns" when the
                                             peer closes the connection, or "still open"
    websocket_client.py PORT HOST --tls CA   the echo over TLS (wss), trusting the roots in CA
    websocket_client.py PORT HOST --greet    asks outpost-echo for a "welcome" frame sent along
                                             with its 101, and expects it before the echo

Exits non-zero on any protocol surprise.
"""
import argparse
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def fail(message):
    print("error:", message)
    sys.exit(1)


def read_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            fail(f"connection closed after {len(data)} of {count} bytes")
        data += chunk
    return data


def handshake(port, host, ca=None, path="/chat"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if ca:
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["http/1.1"])
        sock = context.wrap_socket(sock, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    head = b""  # read byte by byte: frames may follow the head at once
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        if not chunk:
            fail(f"closed during the handshake: {head!r}")
        head += chunk
    lines = head.decode().split("\r\n")
    if not lines[0].startswith("HTTP/1.1 101"):
        fail(f"expected 101, got {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    if headers.get("sec-websocket-accept") != expected:
        fail(f"bad Sec-WebSocket-Accept in {headers}")
    if headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in headers.get("connection", "").lower():
        fail(f"missing upgrade headers in {headers}")
    return sock


def send_frame(sock, opcode, payload):
    header = bytes([0x80 | opcode])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 65536:
        header += bytes([0x80 | 126]) + struct.pack("!H", length)
    else:
        header += bytes([0x80 | 127]) + struct.pack("!Q", length)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(header + mask + masked)


def read_frame(sock):
    first, second = read_exact(sock, 2)
    if second & 0x80:
        fail("server frames must not be masked")
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", read_exact(sock, 2))
    elif length == 127:
        (length,) = struct.unpack("!Q", read_exact(sock, 8))
    return first & 0x0F, read_exact(sock, length)


def expect(sock, opcode, payload, what):
    got_opcode, got = read_frame(sock)
    if got_opcode != opcode or got != payload:
        fail(f"{what}: expected opcode {opcode} with {len(payload)} bytes, got opcode {got_opcode} with {len(got)} bytes")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("host")
    parser.add_argument("--idle", type=float)
    parser.add_argument("--tls", metavar="CA")
    parser.add_argument("--greet", action="store_true")
    args = parser.parse_args()
    sock = handshake(args.port, args.host, args.tls, "/chat?greet=1" if args.greet else "/chat")
    if args.greet:
        expect(sock, 0x1, b"welcome", "greeting")
    send_frame(sock, 0x1, "hello outpost".encode())
    expect(sock, 0x1, b"hello outpost", "text echo")
    if args.idle is not None:
        limit = args.idle
        sock.settimeout(limit)
        start = time.monotonic()
        try:
            data = sock.recv(1)
        except socket.timeout:
            print("still open")
            return
        print(f"closed after {time.monotonic() - start:.1f}s" if not data else f"error: unexpected byte {data!r}")
        return
    binary = bytes(range(256)) * 300
    send_frame(sock, 0x2, binary)
    expect(sock, 0x2, binary, "binary echo")
    send_frame(sock, 0x9, b"ping")
    expect(sock, 0xA, b"ping", "pong")
    send_frame(sock, 0x8, struct.pack("!H", 1000))
    expect(sock, 0x8, struct.pack("!H", 1000), "close")
    sock.settimeout(5)
    if sock.recv(1) != b"":
        fail("the connection stayed open after the close handshake")
    print("echo ok")


if __name__ == "__main__":
    main()

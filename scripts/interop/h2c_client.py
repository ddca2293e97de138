#!/usr/bin/env python3
"""A minimal HTTP/2 client with prior knowledge (h2c), standard library only, for the gateway's
tests: it opens one connection, sends every request at once as concurrent streams, and prints
one JSON line per stream ({"stream", "status", "body"}), then {"elapsed": seconds, "goaway":
[last stream id, error code] or null}. A GOAWAY is recorded and the open streams are still
read to their end.

    h2c_client.py [-H NAME:VALUE]... PORT AUTHORITY PATH [PATH...]

Requests are GETs. Header blocks are sent as HPACK literals without indexing; of the response
headers only `:status` is decoded (static-table entries, or a literal value, plain or Huffman
coded), which is all the tests need. (curl 7.88 cannot reuse an h2c prior-knowledge
connection, hence this client.)
"""
import argparse
import json
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
STATIC_STATUS = {8: "200", 9: "204", 10: "206", 11: "304", 12: "400", 13: "404", 14: "500"}
# Huffman codes of the digits (RFC 7541 Appendix B): (code, bit length).
HUFFMAN_DIGITS = {(0x0, 5): "0", (0x1, 5): "1", (0x2, 5): "2", (0x19, 6): "3", (0x1A, 6): "4",
                  (0x1B, 6): "5", (0x1C, 6): "6", (0x1D, 6): "7", (0x1E, 6): "8", (0x1F, 6): "9"}


def frame(kind, flags, stream, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload


def integer(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value):
    name, value = name.encode(), value.encode()
    return b"\x00" + integer(len(name), 7) + name + integer(len(value), 7) + value


def huffman_digits(data):
    bits = "".join(f"{byte:08b}" for byte in data)
    out, position = "", 0
    while position + 5 <= len(bits):
        for length in (5, 6):
            code = int(bits[position:position + length] or "0", 2)
            if (code, length) in HUFFMAN_DIGITS and position + length <= len(bits):
                out += HUFFMAN_DIGITS[(code, length)]
                position += length
                break
        else:
            break  # padding (all ones) or a non-digit
    return out


def status_of(block):
    first = block[0]
    if first & 0x80:
        return STATIC_STATUS.get(first & 0x7F, "?")
    if first & 0xC0 == 0x40 or first & 0xF0 in (0x00, 0x10):
        index = first & (0x3F if first & 0x40 else 0x0F)
        if index in STATIC_STATUS:
            length, huffman = block[1] & 0x7F, block[1] & 0x80
            value = block[2:2 + length]
            return huffman_digits(value) if huffman else value.decode()
    return "?"


def read_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise SystemExit(f"error: connection closed ({len(data)} of {count} bytes)")
        data += chunk
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", dest="headers", action="append", default=[], help="an extra request header NAME:VALUE")
    parser.add_argument("--after-settings", action="store_true",
                        help="send the requests only once the server's SETTINGS are acknowledged (its limits apply from then)")
    parser.add_argument("port", type=int)
    parser.add_argument("authority")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    port, authority, paths = args.port, args.authority, args.paths
    extra = b"".join(literal(*header.split(":", 1)) for header in args.headers)
    goaway = None
    sock = socket.create_connection(("127.0.0.1", port), timeout=20)
    start = time.monotonic()
    out = PREFACE + frame(SETTINGS, 0, 0)
    if args.after_settings:
        sock.sendall(out)
        out = b""
        while True:
            header = read_exact(sock, 9)
            read_exact(sock, struct.unpack("!I", b"\0" + header[:3])[0])  # the values are not needed
            if header[3] == SETTINGS and not header[4] & ACK:
                out = frame(SETTINGS, ACK, 0)
                break
    streams = {}
    for index, path in enumerate(paths):
        stream = 1 + 2 * index
        block = literal(":method", "GET") + literal(":scheme", "http") + literal(":path", path) + literal(":authority", authority) + extra
        # A block over the default frame size (16 KiB) goes as HEADERS plus CONTINUATION frames.
        pieces = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        for number, piece in enumerate(pieces):
            last = END_HEADERS if number == len(pieces) - 1 else 0
            out += frame(HEADERS, END_STREAM | last, stream, piece) if number == 0 else frame(CONTINUATION, last, stream, piece)
        streams[stream] = {"stream": stream, "path": path, "status": None, "body": b"", "ended": False}
    sock.sendall(out)
    while not all(s["ended"] for s in streams.values()):
        header = read_exact(sock, 9)
        length = struct.unpack("!I", b"\0" + header[:3])[0]
        kind, flags, stream = header[3], header[4], struct.unpack("!I", header[5:9])[0] & 0x7FFFFFFF
        payload = read_exact(sock, length)
        if kind == SETTINGS and not flags & ACK:
            sock.sendall(frame(SETTINGS, ACK, 0))
        elif kind == PING and not flags & ACK:
            sock.sendall(frame(PING, ACK, 0, payload))
        elif kind == GOAWAY:
            goaway = list(struct.unpack("!II", payload[:8]))
        elif kind == RST_STREAM:
            raise SystemExit(f"error: RST_STREAM on stream {stream}: {payload.hex()}")
        elif kind in (HEADERS, CONTINUATION) and stream in streams:
            if streams[stream]["status"] is None:
                streams[stream]["status"] = status_of(payload)
            if flags & END_STREAM:
                streams[stream]["ended"] = True
        elif kind == DATA and stream in streams:
            streams[stream]["body"] += payload
            if length:
                sock.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack("!I", length)) + frame(WINDOW_UPDATE, 0, stream, struct.pack("!I", length)))
            if flags & END_STREAM:
                streams[stream]["ended"] = True
    elapsed = time.monotonic() - start
    try:
        sock.sendall(frame(GOAWAY, 0, 0, struct.pack("!II", 0, 0)))
    except OSError:
        pass  # the server may have closed after its own GOAWAY
    sock.close()
    for s in streams.values():
        print(json.dumps({"stream": s["stream"], "path": s["path"], "status": s["status"], "body": s["body"].decode(errors="replace")}))
    print(json.dumps({"elapsed": elapsed, "goaway": goaway}))


if __name__ == "__main__":
    main()

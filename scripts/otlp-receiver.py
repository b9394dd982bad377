#!/usr/bin/env python3
"""A minimal OTLP/HTTP (JSON) and webhook receiver on loopback, for tests and for trying the
exporter where no OpenTelemetry Collector can be installed.

    scripts/otlp-receiver.py [--port 4318] [--out FILE] [--port-file FILE] [--stall]

Every POST is answered 200 and appended to FILE (default: stdout) as one JSON line:
{"path": "/v1/logs", "headers": {...}, "body": <the JSON body, or the text when not JSON>}.
--stall accepts connections and never reads them: a collector that has stopped, for the
back-pressure tests. --port 0 picks a free port; --port-file says which.
"""
import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--out", help="append one JSON line per request here (default: stdout)")
    parser.add_argument("--port-file", help="write the port listened on here, once listening")
    parser.add_argument("--stall", action="store_true", help="accept connections and never read them")
    args = parser.parse_args()

    lock = threading.Lock()
    out = open(args.out, "a", buffering=1) if args.out else sys.stdout

    if args.stall:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((args.host, args.port))
        listener.listen(64)
        announce(args, listener.getsockname()[1])
        held = []
        while True:
            connection, _ = listener.accept()
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            held.append(connection)  # never read, never closed

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            text = raw.decode("utf-8", "replace")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                      "raw": text, "body": body, "time": time.time()}
            with lock:
                out.write(json.dumps(record) + "\n")
                out.flush()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    announce(args, server.server_address[1])
    server.serve_forever()


def announce(args, port):
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(str(port))
        import os
        os.rename(args.port_file + ".tmp", args.port_file)
    print(f"listening on http://{args.host}:{port}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A webhook receiver for tests of Baton's alert webhooks: records every POST, fails on demand.

Prints "PORT <n>" as its first line on stdout, then serves on 127.0.0.1 until SIGTERM/SIGINT.

    POST <any path>        recorded (path, headers in order, body as text, the status answered);
                           answered 500 while failures are pending, else 204
    POST /_admin/fail      {"count": N}: answer the next N webhook POSTs with 500
    GET  /_admin/received  {"received": [{"path", "headers": [[name, value], ...], "body",
                           "status", "verified"}, ...]} in arrival order (failed attempts included)

With WEBHOOK_SECRET in its environment (never in its arguments), each POST's "verified" says
whether X-Baton-Signature is "sha256=" and the hex HMAC-SHA256 under that key of the
X-Baton-Timestamp value, ".", and the exact body (README "Webhooks"), checked with Python's hmac
module: an implementation independent of Baton's.
"""

import argparse
import hashlib
import hmac
import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.received = []
        self.fail_left = 0
        self.secret = os.environ.get("WEBHOOK_SECRET", "").encode() or None

    def verified(self, headers, body):
        if self.secret is None:
            return None
        timestamp = headers.get("X-Baton-Timestamp", "")
        expected = "sha256=" + hmac.new(self.secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, headers.get("X-Baton-Signature", ""))


class Handler(BaseHTTPRequestHandler):
    receiver = Receiver()
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def answer(self, status, payload=None):
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_admin/received":
            with self.receiver.lock:
                return self.answer(200, {"received": list(self.receiver.received)})
        self.answer(404, {"error": "unknown path"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path == "/_admin/fail":
            with self.receiver.lock:
                self.receiver.fail_left = int(json.loads(body or b"{}").get("count", 0))
            return self.answer(200, {"ok": True})
        with self.receiver.lock:
            status = 204
            if self.receiver.fail_left > 0:
                self.receiver.fail_left -= 1
                status = 500
            self.receiver.received.append({
                "path": self.path,
                "headers": [[name, value] for name, value in self.headers.items()],
                # Decoded losslessly so that a test can verify a signature over the exact bytes.
                "body": body.decode("latin-1"),
                "status": status,
                "verified": self.receiver.verified(self.headers, body),
            })
        self.answer(status)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()

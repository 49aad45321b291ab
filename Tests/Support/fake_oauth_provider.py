#!/usr/bin/env python3
"""A fake OAuth2 provider for Baton's tests and demo (Python 3 standard library only).

It issues short-lived access tokens and ROTATES refresh tokens, invalidating the old one on use
(as Pipedrive or Auth0 do): a second refresh with the same token gets 400 invalid_grant, exactly
the failure Baton exists to prevent. It counts every call, and can be told to misbehave.

Usage:
    fake_oauth_provider.py [--port 0] [--lifetime 10] [--client ID:SECRET ...] [--quiet]

Prints "PORT <n>" as its first line on stdout, then serves on 127.0.0.1 until SIGTERM/SIGINT.
Default client: baton-client:baton-secret. A client written "ID:" is public (no secret).

Token endpoint (RFC 6749): POST /token, form-encoded, grants refresh_token, client_credentials,
authorization_code (with PKCE S256). Client authentication: client_secret_post or
client_secret_basic (HTTP Basic of the form-urlencoded id and secret, RFC 6749 2.3.1).

Admin API (JSON in, JSON out):
    POST /admin/seed      {"client_id": "..."}              -> {"refresh_token": "..."}
                          {"client_id": "...", "count": N}  -> {"refresh_tokens": [...]}
    POST /admin/code      {"client_id", "code_challenge", "redirect_uri"} -> {"code": "..."}
    POST /admin/mode      {"mode": M, "count": N, "delay": S, "retry_after": "..."}
                          the next N token requests (default: all until reset) answer as M:
                          normal, invalid_grant, invalid_client, unauthorized_client,
                          rate_limited (429 + Retry-After), unavailable (503 [+ Retry-After]),
                          server_error (500), non_json, oversized (2 MiB), form_encoded,
                          expires_in_string, jwt_no_expires_in, opaque_no_expires_in,
                          no_refresh_token (no rotation; the old token stays valid),
                          lowercase_token_type, extra_fields, missing_access_token,
                          access_token_number (a 2xx whose access_token is a number; the
                          refresh token still rotates and is sent), expires_in_overflow
                          (expires_in written as 1e400), html_with_tokens (a 2xx HTML page
                          quoting the new tokens; the refresh token rotates),
                          garbage_echo (200 with an HTML body quoting the refresh token
                          and client secret it was sent: a leak test),
                          invalid_grant_bare (400 {"error": "invalid_grant"}, no
                          error_description, as django-oauth-toolkit answers),
                          error_with_tokens (400 JSON without "error" carrying a fresh
                          refresh_token and access_token), html_error_with_tokens (400
                          HTML page quoting a fresh refresh token),
                          redirect (307 to /elsewhere, which counts the requests that
                          follow it: "redirects_followed" in /admin/stats),
                          invalid_json (200 application/json that is not JSON),
                          expires_in_negative, expires_in_huge, expires_in_fractional.
                          An authorization code presented with another redirect_uri
                          than it was issued for gets 400 invalid_request "Mismatching
                          redirect URI." (django-oauth-toolkit's answer).
                          "delay" (seconds) answers slowly, in any mode, after the
                          work is done (a rotated token is already invalid).
                          "delay_before" (seconds) is slow before doing anything, and
                          then does nothing if the client has gone away meanwhile (a
                          provider that commits only when it can answer).
    POST /admin/lifetime  {"seconds": S}
    GET  /admin/stats     {"calls": {grant: n}, "by_client": {...}, "invalid_grant": n,
                           "token_requests": n, "last": {"auth": "basic|post|none",
                           "params": {...no secrets...}}}
    POST /admin/reset     forget modes and counters (tokens stay valid)
    GET  /echo            {"headers": [[name, value], ...]}: the request's headers, in order
                          (a resource server stand-in, to check what a client sent)
    POST /admin/revoke    {"client_id": "..."} -> {"revoked": n}: every valid refresh token of
                          that client dies; presenting one later counts as invalid_grant
                          caused by revocation (kept apart from other invalid_grant).

Records for fault-injection runs (scripts/chaos.py); tokens appear only as fingerprints
(the first 16 hex digits of their SHA-256), except in /admin/issued:
    GET  /admin/ledger    {"calls": [...], "tokens": [...], "inflight": [...],
                           "invalid_grant": {"revoked": n, "reused": n, "unknown": n, "forced": n}}
                          calls: every token request handled: n, grant, client, caller (the
                          form field "chaos_caller", when sent), family (refresh tokens
                          descend from one seed), start/end (epoch seconds: from when it
                          began its work, after any delay_before, to its answer written),
                          outcome, presented/issued token fingerprints, lifetime.
                          tokens: every refresh token: fp, client, family, issued_by,
                          issued_at, state (valid | used | revoked), used_at.
                          inflight: requests being handled now (delay_before included).
                          GET /admin/ledger?calls=0 leaves the calls out.
    GET  /admin/issued    {"refresh_tokens": [...], "access_tokens": [...]}: every token
                          issued, in full (to search logs for leaks).
"""

import argparse
import os
import base64
import hashlib
import json
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_PARAMS = {"client_secret", "refresh_token", "code", "code_verifier"}


def fingerprint(token):
    """A token's public name in the ledger: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


class Provider:
    def __init__(self, lifetime, clients):
        self.lock = threading.Lock()
        self.lifetime = lifetime
        self.clients = clients  # id -> secret ('' for public clients)
        self.refresh_tokens = {}  # token -> client_id, valid tokens only
        self.token_info = {}  # every refresh token ever issued -> its ledger entry (without the token)
        self.access_tokens = []  # every access token issued (for leak searches)
        self.codes = {}  # code -> (client_id, challenge, redirect_uri)
        self.issued = 0
        self.families = 0
        self.ledger = []  # finished token requests
        self.inflight = {}  # n -> token request being handled
        self.requests_started = 0
        self.invalid_grant_kinds = {"revoked": 0, "reused": 0, "unknown": 0, "forced": 0}
        self.reset()

    def reset(self):
        self.mode = "normal"
        self.mode_left = None  # None: until reset
        self.delay = 0.0
        self.delay_before = 0.0
        self.abandoned = 0
        self.retry_after = None
        self.calls = {}
        self.by_client = {}
        self.invalid_grant = 0
        self.token_requests = 0
        self.redirects_followed = 0
        self.last = {}

    def take_mode(self):
        """The mode and delay for this request (consuming one of a counted mode)."""
        with self.lock:
            mode, delay, retry_after, before = self.mode, self.delay, self.retry_after, self.delay_before
            if self.mode_left is not None:
                self.mode_left -= 1
                if self.mode_left <= 0:
                    self.mode, self.mode_left, self.delay, self.retry_after, self.delay_before = "normal", None, 0.0, None, 0.0
            return mode, delay, retry_after, before

    def new_access_token(self, client_id, jwt=False, lifetime=None):
        with self.lock:
            self.issued += 1
            serial = self.issued
        if not jwt:
            token = "at-%d-%s" % (serial, secrets.token_hex(8))
            with self.lock:
                self.access_tokens.append(token)
            return token
        exp = int(time.time() + (lifetime or self.lifetime))

        def b64(data):
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        return "%s.%s.%s" % (b64({"alg": "none", "typ": "JWT"}), b64({"sub": client_id, "exp": exp, "n": serial}), "sig")

    def new_refresh_token(self, client_id, family=None, issued_by="admin"):
        token = "rt-" + secrets.token_hex(16)
        with self.lock:
            if family is None:
                self.families += 1
                family = self.families
            self.refresh_tokens[token] = client_id
            self.token_info[token] = {"fp": fingerprint(token), "client": client_id, "family": family,
                                      "issued_by": issued_by, "issued_at": time.time(), "state": "valid", "used_at": None}
        return token

    def revoke(self, client_id):
        """Every valid refresh token of client_id dies (a user revoked the grant)."""
        with self.lock:
            doomed = [token for token, owner in self.refresh_tokens.items() if owner == client_id]
            for token in doomed:
                del self.refresh_tokens[token]
                self.token_info[token]["state"] = "revoked"
                self.token_info[token]["used_at"] = time.time()
            return len(doomed)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body in one segment: no 40 ms delayed-ACK stall
    provider = None
    quiet = False

    def log_message(self, fmt, *args):
        if not self.quiet:
            sys.stderr.write("fake-oauth: " + (fmt % args) + "\n")

    # -- plumbing ---------------------------------------------------------------------------
    def send(self, status, body, content_type="application/json", headers=None):
        delay, self.pending_delay = getattr(self, "pending_delay", 0), 0
        if delay:
            time.sleep(delay)
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        head = ["HTTP/1.1 %d %s" % (status, self.responses.get(status, ("",))[0]),
                "Content-Type: " + content_type,
                "Content-Length: %d" % len(body),
                "Cache-Control: no-store"]
        for name, value in (headers or {}).items():
            head.append("%s: %s" % (name, value))
        if getattr(self, "call", None) is not None and self.path == "/token":
            self.call["status"] = status
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        self.wfile.flush()
        self.log_request(status, len(body))

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def oauth_error(self, status, error, description, headers=None):
        self.send(status, {"error": error, "error_description": description}, headers=headers)

    # -- routes -----------------------------------------------------------------------------
    def do_GET(self):
        p = self.provider
        if self.path.startswith("/admin/ledger"):
            with p.lock:
                body = {"tokens": list(p.token_info.values()), "inflight": list(p.inflight.values()),
                        "invalid_grant": dict(p.invalid_grant_kinds), "requests_started": p.requests_started}
                if "calls=0" not in self.path:
                    body["calls"] = list(p.ledger)
                body = json.loads(json.dumps(body))  # a snapshot taken under the lock
            return self.send(200, body)
        if self.path == "/admin/issued":
            with p.lock:
                body = {"refresh_tokens": list(p.token_info), "access_tokens": list(p.access_tokens)}
            return self.send(200, body)
        if self.path == "/admin/stats":
            with p.lock:
                self.send(200, {"calls": dict(p.calls), "by_client": {k: dict(v) for k, v in p.by_client.items()},
                                "invalid_grant": p.invalid_grant, "token_requests": p.token_requests,
                                "issued": p.issued, "last": p.last, "lifetime": p.lifetime, "abandoned": p.abandoned,
                                "redirects_followed": p.redirects_followed})
        elif self.path == "/echo":
            self.send(200, {"headers": [[name, value] for name, value in self.headers.items()]})
        else:
            self.send(404, {"error": "not_found"})

    def do_POST(self):
        if self.path == "/token":
            return self.token()
        p = self.provider
        if self.path == "/elsewhere":
            self.read_body()
            with p.lock:
                p.redirects_followed += 1
            return self.send(200, {"access_token": "at-followed-a-redirect", "expires_in": 60})
        try:
            data = json.loads(self.read_body() or b"{}")
        except ValueError:
            return self.send(400, {"error": "admin requests are JSON"})
        if self.path == "/admin/seed":
            client = data.get("client_id", "baton-client")
            if "count" in data:
                return self.send(200, {"refresh_tokens": [p.new_refresh_token(client) for _ in range(int(data["count"]))]})
            return self.send(200, {"refresh_token": p.new_refresh_token(client)})
        if self.path == "/admin/code":
            code = "code-" + secrets.token_hex(8)
            with p.lock:
                p.codes[code] = (data.get("client_id", "baton-client"), data.get("code_challenge"), data.get("redirect_uri"))
            return self.send(200, {"code": code})
        if self.path == "/admin/mode":
            with p.lock:
                p.mode = data.get("mode", "normal")
                p.mode_left = data.get("count")
                p.delay = float(data.get("delay", 0))
                p.delay_before = float(data.get("delay_before", 0))
                p.retry_after = data.get("retry_after")
            return self.send(200, {"ok": True})
        if self.path == "/admin/lifetime":
            with p.lock:
                p.lifetime = float(data["seconds"])
            return self.send(200, {"ok": True})
        if self.path == "/admin/revoke":
            return self.send(200, {"revoked": p.revoke(data.get("client_id", "baton-client"))})
        if self.path == "/admin/reset":
            with p.lock:
                p.reset()
            return self.send(200, {"ok": True})
        self.send(404, {"error": "not_found"})

    def token(self):
        """Handles a token request and writes it into the ledger (see the module docstring)."""
        p = self.provider
        with p.lock:
            p.requests_started += 1
            number = p.requests_started
            self.call = {"n": number, "grant": None, "client": None, "caller": None, "family": None,
                         "received": time.time(), "start": None, "end": None, "status": None, "outcome": None,
                         "presented": None, "issued": None, "lifetime": None}
            p.inflight[number] = self.call
        try:
            self.handle_token()
        finally:
            with p.lock:
                p.inflight.pop(number, None)
                if self.call["start"] is not None:
                    self.call["end"] = time.time()
                    p.ledger.append(self.call)

    def handle_token(self):
        p = self.provider
        raw = self.read_body()
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True).items()}
        grant = form.get("grant_type", "")
        client_id, client_secret, auth = form.get("client_id"), form.get("client_secret"), "post" if "client_secret" in form else "none"
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
                user, _, password = decoded.partition(":")
                client_id, client_secret = urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(password)
                auth = "basic"
            except Exception:
                return self.oauth_error(401, "invalid_client", "malformed Basic authorization")
        with p.lock:
            self.call.update(grant=grant, client=client_id, caller=form.get("chaos_caller"),
                             presented=fingerprint(form.get("refresh_token")))
            info = p.token_info.get(form.get("refresh_token", ""))
            if info:
                self.call["family"] = info["family"]
        mode, delay, retry_after, delay_before = p.take_mode()
        if delay_before:
            time.sleep(delay_before)
            if self.client_gone():
                with p.lock:
                    p.abandoned += 1
                    self.call["outcome"] = "abandoned"
                self.close_connection = True
                return
        self.call["start"] = time.time()
        self.call["outcome"] = mode if mode != "normal" else "ok"
        with p.lock:
            p.token_requests += 1
            p.calls[grant] = p.calls.get(grant, 0) + 1
            client_stats = p.by_client.setdefault(client_id or "", {"calls": 0, "invalid_grant": 0})
            client_stats["calls"] += 1
            p.last = {"auth": auth, "params": {k: v for k, v in form.items() if k not in SECRET_PARAMS},
                      "content_type": self.headers.get("Content-Type", "")}
        # A slow provider answers late, after it has done its work (rotated the token): the
        # dangerous case for refresh races. send() sleeps before writing.
        self.pending_delay = delay

        # Failure modes first: they answer whatever the request was.
        if mode in ("invalid_client", "unauthorized_client"):
            return self.oauth_error(401 if mode == "invalid_client" else 400, mode, "client rejected (forced)")
        if mode == "invalid_grant":
            return self.refuse_grant(client_stats, "refresh token revoked (forced)", "forced")
        if mode == "rate_limited":
            return self.oauth_error(429, "rate_limited", "slow down", headers={"Retry-After": retry_after or "2"})
        if mode == "unavailable":
            return self.oauth_error(503, "temporarily_unavailable", "maintenance",
                                    headers={"Retry-After": retry_after} if retry_after else None)
        if mode == "server_error":
            return self.send(500, "<html><body>Internal Server Error</body></html>", content_type="text/html")
        if mode == "non_json":
            return self.send(200, "<html><body>Welcome to the login page</body></html>", content_type="text/html")
        if mode == "oversized":
            return self.send(200, '{"access_token":"' + "x" * (2 * 1024 * 1024) + '"}')
        if mode == "invalid_grant_bare":
            with p.lock:
                p.invalid_grant += 1
                p.invalid_grant_kinds["forced"] += 1
            return self.send(400, {"error": "invalid_grant"})
        if mode == "error_with_tokens":
            return self.send(400, {"refresh_token": p.new_refresh_token(client_id or ""),
                                   "access_token": p.new_access_token(client_id or ""), "note": "half-done"})
        if mode == "html_error_with_tokens":
            return self.send(400, "<html><body>Bad request. Your new token: %s</body></html>"
                             % p.new_refresh_token(client_id or ""), content_type="text/html")
        if mode == "redirect":
            return self.send(307, "", content_type="text/plain", headers={"Location": "/elsewhere"})
        if mode == "invalid_json":
            return self.send(200, '{"access_token": "at-x", "expires_in": 60,')
        if mode == "garbage_echo":
            return self.send(200, "<html><body>Oops: refresh_token=%s client_secret=%s</body></html>"
                             % (form.get("refresh_token", ""), client_secret or ""), content_type="text/html")

        # Client authentication.
        expected = p.clients.get(client_id)
        if expected is None or (expected != "" and client_secret != expected):
            return self.oauth_error(401, "invalid_client", "unknown client or wrong secret")

        refresh_token = None
        if grant == "refresh_token":
            presented = form.get("refresh_token", "")
            with p.lock:
                owner = p.refresh_tokens.get(presented)
                valid = owner == client_id
                info = p.token_info.get(presented)
                if valid and mode != "no_refresh_token":
                    del p.refresh_tokens[presented]  # rotation: the old token dies on use
                    info["state"], info["used_at"] = "used", time.time()
            if not valid:
                kind = "unknown" if info is None or info["client"] != client_id else ("revoked" if info["state"] == "revoked" else "reused")
                return self.refuse_grant(client_stats, "refresh token is invalid, expired or already used", kind)
            if mode == "no_refresh_token":
                refresh_token = presented
            else:
                refresh_token = p.new_refresh_token(client_id, family=info["family"], issued_by=self.call["caller"] or "")
                self.call["issued"] = fingerprint(refresh_token)
        elif grant == "client_credentials":
            pass
        elif grant == "authorization_code":
            with p.lock:
                entry = p.codes.pop(form.get("code", ""), None)
            if entry is not None and entry[0] == client_id and entry[2] != form.get("redirect_uri"):
                return self.oauth_error(400, "invalid_request", "Mismatching redirect URI.")
            if entry is None or entry[0] != client_id:
                return self.refuse_grant(client_stats, "authorization code is invalid or already used", "unknown")
            if entry[1]:
                verifier = form.get("code_verifier", "")
                challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge != entry[1]:
                    return self.refuse_grant(client_stats, "PKCE verification failed", "unknown")
            refresh_token = p.new_refresh_token(client_id, issued_by=self.call["caller"] or "")
        else:
            return self.oauth_error(400, "unsupported_grant_type", "grant_type %r is not supported" % grant)

        lifetime = p.lifetime
        self.call["lifetime"] = lifetime
        body = {"access_token": p.new_access_token(client_id, jwt=(mode == "jwt_no_expires_in"), lifetime=lifetime),
                "token_type": "bearer" if mode == "lowercase_token_type" else "Bearer",
                "expires_in": int(lifetime) if lifetime == int(lifetime) else lifetime}
        if form.get("scope"):
            body["scope"] = form["scope"]
        if refresh_token and mode != "no_refresh_token":
            body["refresh_token"] = refresh_token
        if mode == "expires_in_string":
            body["expires_in"] = str(body["expires_in"])
        if mode in ("jwt_no_expires_in", "opaque_no_expires_in"):
            del body["expires_in"]
        if mode == "extra_fields":
            body.update({"id_token": "ignored", "x_custom": {"nested": [1, 2]}, "refresh_expires_in": 86400})
        if mode == "missing_access_token":
            del body["access_token"]
        if mode == "access_token_number":
            body["access_token"] = 4242424242
        if mode == "expires_in_negative":
            body["expires_in"] = -3600
        if mode == "expires_in_huge":
            body["expires_in"] = 10 ** 30
        if mode == "expires_in_fractional":
            body["expires_in"] = 59.75
        if mode == "expires_in_overflow":
            return self.send(200, json.dumps(dict(body, expires_in="@")).replace('"@"', "1e400"))
        if mode == "html_with_tokens":
            page = "<html><body>Signed in. access_token=%s refresh_token=%s</body></html>" % (
                body["access_token"], body.get("refresh_token", ""))
            return self.send(200, page, content_type="text/html")
        if mode == "form_encoded":
            return self.send(200, urllib.parse.urlencode(body), content_type="application/x-www-form-urlencoded")
        self.send(200, body)

    def client_gone(self):
        """Whether the client closed its connection (readable with nothing to read)."""
        import select
        import socket
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def refuse_grant(self, client_stats, description, kind):
        with self.provider.lock:
            self.provider.invalid_grant += 1
            self.provider.invalid_grant_kinds[kind] += 1
            self.call["outcome"] = "invalid_grant_" + kind
            client_stats["invalid_grant"] += 1
        self.oauth_error(400, "invalid_grant", description)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=10.0, help="access token lifetime in seconds")
    parser.add_argument("--client", action="append", default=[],
                        help="ID:SECRET (repeatable); FAKE_OAUTH_CLIENTS (one ID:SECRET per line) keeps them out of argv")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    clients = {}
    from_environment = [line for line in os.environ.get("FAKE_OAUTH_CLIENTS", "").splitlines() if line]
    for spec in args.client + from_environment or ["baton-client:baton-secret"]:
        client_id, _, secret = spec.partition(":")
        clients[client_id] = secret
    Handler.provider = Provider(args.lifetime, clients)
    Handler.quiet = args.quiet
    ThreadingHTTPServer.request_queue_size = 512  # bursts of refreshes must not overflow the listen backlog
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

"""What Baton's Python drivers (demo, serve bench, chaos run) share: starting a private
redis-server and the fake OAuth provider as child processes, the provider's admin API, and a
tiny Redis client (RESP2 over a socket, standard library only).

Import it from a script in scripts/ or bench/ with:
    sys.path.insert(0, os.path.join(ROOT, "scripts")); import testbed
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROVIDER = os.path.join(ROOT, "Tests", "Support", "fake_oauth_provider.py")


def free_port():
    """A TCP port free on 127.0.0.1 right now (never `--port 0`: that turns Redis's TCP off)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_redis(port, timeout=10.0):
    """Waits until the redis-server on `port` answers PING (not LOADING); False on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with RESP(port, timeout=0.5) as redis:
                if redis.command("PING") == "PONG":
                    return True
        except (OSError, RedisReplyError):
            pass
        time.sleep(0.05)
    return False


def redis_server_args(port, workdir, persistence=("--save", "", "--appendonly", "no")):
    """The command line of a private redis-server: loopback, `workdir`, its log in workdir/redis.log."""
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
            "--logfile", os.path.join(workdir, "redis.log"), *persistence]


def start_redis(port, workdir, persistence=("--save", "", "--appendonly", "no"), **popen):
    """Starts a private redis-server and waits until it answers. Returns the Popen."""
    process = subprocess.Popen(redis_server_args(port, workdir, persistence), **popen)
    if not wait_for_redis(port):
        process.kill()
        raise RuntimeError("redis-server did not start on port %d (see %s/redis.log)" % (port, workdir))
    return process


def open_owner_only(path):
    """Opens `path` for writing, created with mode 0600: Baton refuses a secret file (client
    secret, keys) that group or others may read."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w")


def write_secret_file(path, text):
    """Writes a secret (a client secret) to `path`, mode 0600; returns the path."""
    with open_owner_only(path) as f:
        f.write(text)
    return path


def write_keys_file(baton, folder):
    """Makes an encryption key with `baton keygen` in folder/encryption-keys (mode 0600); returns its
    path, for "encryption": {"keys_file": ...}."""
    path = os.path.join(folder, "encryption-keys")
    with open_owner_only(path) as keys:
        subprocess.run([baton, "keygen"], stdout=keys, check=True)
    return path


def start_provider(lifetime, clients=(), stderr=None, popen=subprocess.Popen, **kwargs):
    """Starts the fake OAuth provider (quiet) on a free port. `clients` are "ID:SECRET".
    `popen` lets a caller that keeps a list of its children pass its own spawner.
    Returns (process, base URL)."""
    args = [sys.executable, PROVIDER, "--port", "0", "--lifetime", str(lifetime), "--quiet"]
    # Clients (with their secrets) go through the environment, never the argument list.
    kwargs["env"] = dict(os.environ, FAKE_OAUTH_CLIENTS="\n".join(clients))
    if stderr is not None:
        kwargs["stderr"] = stderr
    process = popen(args, stdout=subprocess.PIPE, text=True, **kwargs)
    line = process.stdout.readline().strip()
    if not line.startswith("PORT "):
        raise RuntimeError("the fake OAuth provider did not start: %r" % line)
    return process, "http://127.0.0.1:%s" % line.split()[1]


def provider_admin(url, path, body=None, timeout=10):
    """One call of the provider's admin API (GET without a body, POST with one); JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=timeout) as answer:
        return json.loads(answer.read())


class RedisReplyError(Exception):
    """An error reply from Redis (its text verbatim, e.g. "OOM command not allowed ...")."""


class RESP:
    """A tiny blocking Redis client: RESP2 commands and replies over one socket.

    `command(*args)` sends one command and returns its reply: str for simple strings and bulk
    strings (UTF-8, undecodable bytes replaced), int, list, or None; an error reply raises
    RedisReplyError. For pub/sub, `send(...)` then `reply(timeout)` repeatedly; a timeout raises
    socket.timeout and keeps any partial reply buffered. Not thread-safe: one per thread.
    """

    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buffer = bytearray()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))

    def command(self, *args):
        self.send(*args)
        return self.reply()

    def reply(self, timeout=None):
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        while True:
            try:
                value, end = self._parse(0)
            except IndexError:  # incomplete: read more
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("redis closed the connection")
                self.buffer += chunk
                continue
            del self.buffer[:end]
            if isinstance(value, RedisReplyError):
                raise value
            return value

    def _parse(self, pos):
        """(value, position after it) of the reply starting at pos; IndexError when incomplete."""
        line_end = self.buffer.find(b"\r\n", pos)
        if line_end < 0:
            raise IndexError
        kind, text, after = self.buffer[pos:pos + 1], bytes(self.buffer[pos + 1:line_end]), line_end + 2
        if kind == b"+":
            return text.decode("utf-8", "replace"), after
        if kind == b"-":
            return RedisReplyError(text.decode("utf-8", "replace")), after
        if kind == b":":
            return int(text), after
        if kind == b"$":
            length = int(text)
            if length < 0:
                return None, after
            if len(self.buffer) < after + length + 2:
                raise IndexError
            return bytes(self.buffer[after:after + length]).decode("utf-8", "replace"), after + length + 2
        if kind == b"*":
            count = int(text)
            if count < 0:
                return None, after
            items = []
            for _ in range(count):
                item, after = self._parse(after)
                items.append(item)
            return items, after
        raise RedisReplyError("unexpected reply type %r" % kind)

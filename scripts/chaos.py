#!/usr/bin/env python3
"""`make chaos`: a randomized fault-injection run of Baton against real processes.

Starts a private redis-server (AOF, fsync always), the fake OAuth provider (8-second tokens,
rotating refresh tokens), three `baton serve` replicas, `baton refresh`/`baton get` callers,
forced-refresh requests pushed straight onto the list, and injects faults picked at random from
a seed: replica kill -9 / SIGSTOP past the lease / SIGTERM and restart, Redis restart, Redis
out of memory, a slow, failing, rate-limiting, hanging or garbage-answering provider, and
revocations followed by a re-seed. Then it stops the faults, lets things settle, checks the
invariants from the provider's own records and from Redis, and prints a table.

    CHAOS_SEED=N        replays a run (the seed is printed first; default: a fresh one)
    CHAOS_SECONDS=S     how long faults are injected (default 120)
    BATON=PATH          the executable (default .build/debug/baton)

Exit status 0 when every invariant holds; 1 otherwise (the work folder with every log is kept
and its path printed); 2 when the run itself could not be set up.
"""
import collections
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed  # noqa: E402
from testbed import RESP, RedisReplyError, provider_admin  # noqa: E402

BATON = os.environ.get("BATON", os.path.join(testbed.ROOT, ".build", "debug", "baton"))
SERVICES = ["crm", "billing"]
REPLICAS = ["replica-1", "replica-2", "replica-3"]
LIFETIME = 8.0  # seconds, access tokens
BUFFER = 3.0  # refresh_buffer: refresh 3 s before expiry
LOCK_TTL = 6.0
REQUEST_TIMEOUT = 4.0  # must stay below LOCK_TTL
FORCED_INTERVAL = 2.0  # forced_refresh_min_interval
PREFIX = "oauth"
REQUESTS = PREFIX + ":refresh-requests"
# Forced requests pushed, with their weights. CHAOS_REQUESTS=current,old (say) narrows them down,
# to tell one defect from another while debugging.
REQUEST_KINDS = {"current": 5, "old": 2, "future": 1, "malformed": 2, "oversized": 1}
if os.environ.get("CHAOS_REQUESTS"):
    REQUEST_KINDS = {k: v for k, v in REQUEST_KINDS.items() if k in os.environ["CHAOS_REQUESTS"].split(",")}
HANDLED_LIMIT = 4096  # a request entry larger than this is oversized (the fixed Baton drops it)


def fingerprint(token):
    """As the provider's ledger names tokens (never print a token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16] if token else None


def hms(t):
    return time.strftime("%H:%M:%S", time.localtime(t)) + (".%03d" % int((t % 1) * 1000))


class Chaos:
    def __init__(self, seed, seconds):
        self.seed, self.seconds = seed, seconds
        self.dir = tempfile.mkdtemp(prefix="baton-chaos.")
        self.stop_load = threading.Event()  # callers and request pushers
        self.stop_watch = threading.Event()  # watchers and samplers
        self.mutex = threading.Lock()
        self.started = time.time()
        self.faults = collections.Counter()  # kind -> count injected
        self.timeline = []  # (time, text): faults and what the harness did
        self.followups = []  # (due, serial, description, function)
        self.serial = 0
        self.replicas = {}  # id -> Popen (None while down)
        self.frozen = set()  # SIGSTOPped replica ids
        self.redis = None  # Popen of redis-server (None while down)
        self.redis_fault = None  # "restart" or "oom" while one is active
        self.service_busy = set()  # services between a revocation and their re-seed
        self.children = []  # every Popen, for the final cleanup
        self.reseeds = []  # re-seed threads
        self.threads = []
        # What the checks need.
        self.allowed = collections.defaultdict(set)  # service -> versions current when a forced refresh was asked
        self.pushed = collections.Counter()  # request kind -> pushed
        self.push_refused = 0
        self.oversized = collections.defaultdict(set)  # service -> versions named by oversized requests
        self.calls = collections.Counter()  # caller action -> runs, and "... failed"
        self.published = collections.defaultdict(list)  # service -> versions on the change channel
        self.polled = collections.defaultdict(list)  # service -> versions read by polling (changes only)
        self.resubscribes = 0
        self.version_errors = []
        self.record_texts = set()  # records without access_token, as seen (scanned for secrets)
        self.cmdlines = set()  # argument lists of baton processes
        self.cmdline_samples = 0
        self.client_secrets = {s: "cs%s" % secrets.token_hex(12) for s in SERVICES}
        self.tls = threading.local()

    # -- processes -----------------------------------------------------------------------
    def log_path(self, name):
        return os.path.join(self.dir, name)

    def note(self, text, echo=True):
        now = time.time()
        with self.mutex:
            self.timeline.append((now, text))
        with open(self.log_path("faults.log"), "a") as f:
            f.write("%s +%6.1fs  %s\n" % (hms(now), now - self.started, text))
        if echo:
            print("  %6.1fs  %s" % (now - self.started, text), flush=True)

    def spawn(self, name, args, **kwargs):
        log = open(self.log_path(name + ".log"), "a")
        process = subprocess.Popen(args, stdout=kwargs.pop("stdout", log), stderr=kwargs.pop("stderr", log),
                                   start_new_session=True, **kwargs)
        self.children.append(process)
        return process

    def start_redis(self):
        args = testbed.redis_server_args(self.redis_port, self.dir, ("--save", "", "--appendonly", "yes", "--appendfsync", "always"))
        self.redis = self.spawn("redis-stdout", args)
        if not testbed.wait_for_redis(self.redis_port, 20):
            raise RuntimeError("redis-server did not come back (see %s)" % self.log_path("redis.log"))

    def start_replica(self, replica):
        self.replicas[replica] = self.spawn(replica, [BATON, "serve", "--config", self.log_path(replica + ".json"), "--id", replica],
                                            stdout=subprocess.DEVNULL)

    def write_config(self, name, caller):
        services = {}
        for service in SERVICES:
            secret_file = self.log_path(service + "-client-secret")
            services[service] = {"token_url": self.provider_url + "/token", "client_id": service + "-client",
                                 "client_secret_file": secret_file, "refresh_buffer": "%ds" % BUFFER,
                                 "request_timeout": "%ds" % REQUEST_TIMEOUT, "connect_timeout": "1s",
                                 "extra_params": {"chaos_caller": caller}}
        config = {"redis_url": "redis://127.0.0.1:%d/0" % self.redis_port, "prefix": PREFIX, "lock_ttl": "%ds" % LOCK_TTL,
                  "lock_wait": "5s", "forced_refresh_min_interval": "%ds" % FORCED_INTERVAL, "services": services,
                  # One host: every replica and CLI caller shares the rotated-token spool.
                  "state_dir": self.log_path("state"), "encryption": {"keys_file": self.keys_file},
                  # Three replicas on one host would clash on the default http.listen.
                  "http": {"listen": "off"}}
        path = self.log_path(name + ".json")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        return path

    def setup(self):
        self.redis_port = testbed.free_port()
        self.start_redis()
        clients = ["%s-client:%s" % (s, self.client_secrets[s]) for s in SERVICES]
        provider, self.provider_url = testbed.start_provider(LIFETIME, clients, stderr=open(self.log_path("provider.log"), "w"),
                                                             start_new_session=True)
        self.children.append(provider)
        for service in SERVICES:
            testbed.write_secret_file(self.log_path(service + "-client-secret"), self.client_secrets[service])
        self.keys_file = testbed.write_keys_file(BATON, self.dir)
        self.cli_config = self.write_config("cli", "cli")
        for replica in REPLICAS:
            self.write_config(replica, replica)
        rc, _ = self.baton("config", "check", self.cli_config)
        if rc != 0:
            raise RuntimeError("baton config check failed (see %s)" % self.log_path("cli.log"))
        for service in SERVICES:
            if not self.seed_service(service):
                raise RuntimeError("could not seed %s (see %s)" % (service, self.log_path("cli.log")))
        for replica in REPLICAS:
            self.start_replica(replica)

    def baton(self, *args, stdin=None, timeout=60):
        """Runs a baton command with the CLI configuration; its output goes to cli.log with any
        access_token field blanked (the one place a token may appear). Returns (rc, stdout)."""
        command = [BATON, *args] + (["--config", self.cli_config] if args[0] not in ("config",) else [])
        try:
            result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=timeout)
            rc, out, err = result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired as expired:
            rc, out, err = "timeout", expired.stdout or "", expired.stderr or ""
            out, err = (out.decode() if isinstance(out, bytes) else out), (err.decode() if isinstance(err, bytes) else err)
        shown = out
        try:
            record = json.loads(out)
            if isinstance(record, dict) and "access_token" in record:
                record["access_token"] = "<access_token>"
                shown = json.dumps(record, sort_keys=True)
        except ValueError:
            if args[0] == "get" and "--json" not in args:
                shown = "<token>"
        with open(self.log_path("cli.log"), "a") as f:
            f.write("%s %s -> %s\n  stdout: %s\n  stderr: %s\n" % (hms(time.time()), " ".join(args), rc, shown.strip(), err.strip()))
        return rc, out

    def seed_service(self, service, attempts=20):
        """A fresh refresh token from the provider's admin API, stored with `baton seed` (stdin)."""
        token = provider_admin(self.provider_url, "/admin/seed", {"client_id": service + "-client"})["refresh_token"]
        for _ in range(attempts):
            rc, _ = self.baton("seed", service, "--refresh-token-file", "-", stdin=token)
            if rc == 0:
                return True
            time.sleep(0.5)
        return False

    # -- a Redis connection per thread -----------------------------------------------------
    def r(self, *args):
        """One command on this thread's connection (reconnecting once on a broken connection)."""
        for attempt in (1, 2):
            connection = getattr(self.tls, "redis", None)
            try:
                if connection is None:
                    connection = self.tls.redis = RESP(self.redis_port, timeout=5)
                return connection.command(*args)
            except (OSError, ConnectionError):
                if connection is not None:
                    connection.close()
                self.tls.redis = None
                if attempt == 2:
                    raise

    def record(self, service):
        text = self.r("GET", "%s:{%s}:token" % (PREFIX, service))
        return json.loads(text) if text else None

    def stored_secret_fp(self, service):
        """The ledger name of the stored refresh token. A sealed envelope (v2) carries the token's
        identity, its SHA-1, in `id`: matched against every token the provider issued."""
        text = self.r("GET", "%s:{%s}:secret" % (PREFIX, service))
        if not text:
            return None
        envelope = json.loads(text)
        if "refresh_token" in envelope:
            return fingerprint(envelope["refresh_token"])
        issued = provider_admin(self.provider_url, "/admin/issued")["refresh_tokens"]
        by_identity = {hashlib.sha1(token.encode()).hexdigest(): token for token in issued}
        return fingerprint(by_identity.get(envelope.get("id")))

    # -- load --------------------------------------------------------------------------------
    def caller(self, number):
        """`baton refresh`, `baton get`, and `baton get --newer-than` after a pretend 401."""
        rng = random.Random("%s:caller:%d" % (self.seed, number))
        while not self.stop_load.is_set():
            service = rng.choice(SERVICES)
            action = rng.choices(["refresh", "get", "newer"], [2, 2, 3])[0]
            if action == "refresh":
                rc, _ = self.baton("refresh", service)
            else:
                rc, out = self.baton("get", service, "--json", "--wait", "5s")
                if action == "newer" and rc == 0:
                    version = json.loads(out)["version"]
                    with self.mutex:
                        self.allowed[service].add(version)
                    rc, _ = self.baton("get", service, "--newer-than", str(version), "--wait", "8s", "--json")
            with self.mutex:
                self.calls[action] += 1
                if rc != 0:
                    self.calls[action + " failed"] += 1
            self.stop_load.wait(rng.uniform(0.2, 1.2))

    def pusher(self):
        """Forced-refresh requests LPUSHed straight onto the list, as n8n's Redis node does."""
        rng = random.Random("%s:requests" % self.seed)
        malformed = ["not json", '{"service":5,"version":1}', '{"version":3}', '[1,2,3]', '{"service":"crm","version":true}',
                     '{"service":"crm","version":"twelve"}', '{"service":"no-such-service","version":1}', '', '{"service":"billing"']
        while not self.stop_load.is_set():
            self.stop_load.wait(rng.uniform(0.3, 1.5))
            service = rng.choice(SERVICES)
            kind = rng.choices(list(REQUEST_KINDS), list(REQUEST_KINDS.values()))[0]
            try:
                current = self.record(service)
                version = current["version"] if current else 0
                if kind == "current":
                    entry = json.dumps({"service": service, "version": version})
                elif kind == "old":
                    entry = json.dumps({"service": service, "version": max(0, version - rng.randint(1, 5))})
                elif kind == "future":
                    entry = json.dumps({"service": service, "version": 999999})
                elif kind == "malformed":
                    entry = rng.choice(malformed)
                elif rng.random() < 0.5:
                    entry = json.dumps({"service": service, "version": version, "padding": "x" * (HANDLED_LIMIT + rng.randint(1, 4096))})
                else:
                    entry = json.dumps({"service": service, "version": "1" * (HANDLED_LIMIT + rng.randint(1, 4096))})
                self.r("LPUSH", REQUESTS, entry)
                with self.mutex:
                    self.pushed[kind] += 1
                    if kind in ("current", "future"):
                        self.allowed[service].add(version)
                    elif kind == "oversized" and "padding" in entry:
                        self.oversized[service].add(version)
            except (OSError, ConnectionError, RedisReplyError, ValueError):
                with self.mutex:
                    self.push_refused += 1

    # -- watchers ------------------------------------------------------------------------------
    def subscriber(self):
        """Every version published on the change channels, in order."""
        connection = None
        while not self.stop_watch.is_set():
            try:
                if connection is None:
                    connection = RESP(self.redis_port, timeout=2)
                    connection.send("PSUBSCRIBE", PREFIX + ":*:changed")
                    connection.reply()
                    with self.mutex:
                        self.resubscribes += 1
                try:
                    message = connection.reply(timeout=0.5)
                except socket.timeout:
                    continue
                if isinstance(message, list) and message[0] == "pmessage":
                    service = message[2][len(PREFIX) + 2:-len("}:changed")]
                    version = int(message[3])
                    with self.mutex:
                        history = self.published[service]
                        if history and version <= history[-1]:
                            self.version_errors.append("%s published version %d after %d at %s" % (service, version, history[-1], hms(time.time())))
                        history.append(version)
            except (OSError, ConnectionError, RedisReplyError, ValueError):
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.1)

    def poller(self):
        """Reads every record often: versions must never go down; records are kept (without
        access_token) for the secret search."""
        while not self.stop_watch.is_set():
            for service in SERVICES:
                try:
                    record = self.record(service)
                except (OSError, ConnectionError, RedisReplyError, ValueError):
                    continue
                if not record:
                    continue
                record.pop("access_token", None)
                text = json.dumps(record, sort_keys=True)
                with self.mutex:
                    self.record_texts.add(text)
                    history = self.polled[service]
                    if history and record["version"] < history[-1]:
                        self.version_errors.append("%s record went from version %d back to %d at %s" % (service, history[-1], record["version"], hms(time.time())))
                    if not history or record["version"] != history[-1]:
                        history.append(record["version"])
            self.stop_watch.wait(0.05)

    def cmdline_sampler(self):
        """The argument lists of every baton process (no secret may be passed as an argument)."""
        while not self.stop_watch.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        argv = f.read().split(b"\0")
                except OSError:
                    continue
                if argv and os.path.basename(argv[0].decode("utf-8", "replace")) == "baton":
                    with self.mutex:
                        self.cmdlines.add(tuple(a.decode("utf-8", "replace") for a in argv))
                        self.cmdline_samples += 1
            self.stop_watch.wait(0.2)

    # -- faults ----------------------------------------------------------------------------------
    def later(self, delay, description, function):
        with self.mutex:
            self.serial += 1
            self.followups.append((time.time() + delay, self.serial, description, function))

    def run_followups(self, everything=False):
        now = time.time()
        with self.mutex:
            due = sorted(f for f in self.followups if everything or f[0] <= now)
            for followup in due:
                self.followups.remove(followup)
        for followup in due:
            try:
                followup[3]()
            except Exception as error:  # a follow-up must never stop the run
                self.note("follow-up %r failed: %s" % (followup[2], error))

    def holds_unsaved_token(self, caller):
        """Whether `caller` is in a provider call, or holds a rotated refresh token that is not in
        Redis yet. Stopping it then loses the only valid token: a hazard no lease-based design can
        avoid, so the harness does not inject it (the fault is skipped instead)."""
        try:
            ledger = provider_admin(self.provider_url, "/admin/ledger?calls=0")
            stored = {self.stored_secret_fp(service) for service in SERVICES}
        except Exception:
            return True
        if any(call["caller"] in (caller, None) for call in ledger["inflight"]):
            return True
        return any(t["issued_by"] == caller and t["state"] == "valid" and t["fp"] not in stored
                   and time.time() - t["issued_at"] < 30 for t in ledger["tokens"])

    def freeze(self, replica):
        """SIGSTOP, then make sure the frozen replica holds nothing only it knows."""
        process = self.replicas[replica]
        os.kill(process.pid, signal.SIGSTOP)
        time.sleep(0.1)  # a request already sent reaches the provider's books
        if self.holds_unsaved_token(replica):
            os.kill(process.pid, signal.SIGCONT)
            return False
        return True

    def live_replicas(self):
        return [r for r in REPLICAS if self.replicas.get(r) is not None and self.replicas[r].poll() is None and r not in self.frozen]

    def inject(self, rng):
        kinds = {"replica kill -9": 3, "replica SIGSTOP past lease": 3, "replica SIGTERM + restart": 2,
                 "redis restart (AOF)": 1.5, "redis OOM window": 1.5, "provider slow after rotating": 1.5,
                 "provider 5xx": 1.5, "provider 429 + Retry-After": 1, "provider hang past timeout": 1,
                 "provider garbage 2xx": 1.5, "revocation + re-seed": 1, "re-seed": 1}
        kind = rng.choices(list(kinds), list(kinds.values()))[0]
        live = self.live_replicas()
        if kind.startswith("replica") and len(live) <= 1:
            kind = "provider 5xx"
        if kind.startswith("redis") and self.redis_fault:
            kind = "provider slow after rotating"
        services = [s for s in SERVICES if s not in self.service_busy]
        if kind in ("revocation + re-seed", "re-seed") and not services:
            kind = "provider garbage 2xx"

        if kind == "replica kill -9":
            replica = rng.choice(live)
            if not self.freeze(replica):
                return self.skipped(kind, replica)
            self.replicas[replica].kill()
            self.replicas[replica].wait()
            self.replicas[replica] = None
            self.later(rng.uniform(0.5, 3), "restart " + replica, lambda: self.restart(replica))
            detail = replica
        elif kind == "replica SIGSTOP past lease":
            replica = rng.choice(live)
            if not self.freeze(replica):
                return self.skipped(kind, replica)
            self.frozen.add(replica)
            pause = LOCK_TTL + rng.uniform(1, 3)
            self.later(pause, "SIGCONT " + replica, lambda: self.thaw(replica))
            detail = "%s for %.1f s" % (replica, pause)
        elif kind == "replica SIGTERM + restart":
            replica = rng.choice(live)
            process = self.replicas[replica]
            process.terminate()
            self.frozen.add(replica)  # not a target until it is back
            delay = rng.uniform(0.5, 2)
            threading.Thread(target=self.restart_after_exit, args=(replica, process, delay), daemon=True).start()
            detail = replica
        elif kind == "redis restart (AOF)":
            how = rng.choice(["SIGTERM", "SIGKILL"])
            self.redis_fault = "restart"
            (self.redis.terminate if how == "SIGTERM" else self.redis.kill)()
            self.redis.wait()
            self.redis = None
            down = rng.uniform(0.5, 3)
            self.later(down, "start redis-server", self.redis_back)
            detail = "%s, down %.1f s" % (how, down)
        elif kind == "redis OOM window":
            try:
                self.r("CONFIG", "SET", "maxmemory-policy", "noeviction")
                self.r("CONFIG", "SET", "maxmemory", "1")
            except Exception as error:
                return self.skipped(kind, str(error))
            self.redis_fault = "oom"
            window = rng.uniform(1, 4)
            self.later(window, "end OOM window", self.end_oom)
            detail = "%.1f s" % window
        elif kind.startswith("provider"):
            count = rng.randint(1, 3)
            if kind == "provider slow after rotating":
                mode = {"mode": "normal", "delay": round(rng.uniform(0.5, REQUEST_TIMEOUT - 2), 2)}
            elif kind == "provider 5xx":
                mode = {"mode": rng.choice(["server_error", "unavailable"])}
                if mode["mode"] == "unavailable" and rng.random() < 0.5:
                    mode["retry_after"] = "1"
            elif kind == "provider 429 + Retry-After":
                mode = {"mode": "rate_limited", "retry_after": rng.choice(["1", "2"])}
            elif kind == "provider hang past timeout":
                mode, count = {"mode": "normal", "delay_before": REQUEST_TIMEOUT + 1.5}, 1
            else:
                # Garbage answered before any work: a provider that rotates and then answers
                # garbage (missing_access_token) destroys the credential whatever the client does.
                mode = {"mode": rng.choice(["non_json", "garbage_echo", "oversized"])}
            mode["count"] = count
            provider_admin(self.provider_url, "/admin/mode", mode)
            detail = ", ".join("%s=%s" % kv for kv in sorted(mode.items()))
        elif kind == "revocation + re-seed":
            service = rng.choice(services)
            revoked = provider_admin(self.provider_url, "/admin/revoke", {"client_id": service + "-client"})["revoked"]
            self.service_busy.add(service)
            delay = rng.uniform(0.5, 6)
            self.later(delay, "re-seed " + service, lambda: self.reseed_in_background(service))
            detail = "%s (%d token(s) revoked), re-seed in %.1f s" % (service, revoked, delay)
        else:
            service = rng.choice(services)
            self.service_busy.add(service)
            self.reseed_in_background(service)
            detail = service
        self.faults[kind] += 1
        self.note("%s: %s" % (kind, detail))

    def skipped(self, kind, why):
        self.faults["skipped: " + kind] += 1
        self.note("%s skipped (%s: in a provider call or holding an unsaved rotated token)" % (kind, why))

    def restart(self, replica):
        self.start_replica(replica)
        self.frozen.discard(replica)

    def restart_after_exit(self, replica, process, delay):
        try:
            code = process.wait(25)
        except subprocess.TimeoutExpired:
            self.note("%s did not exit within 25 s of SIGTERM: killed" % replica)
            self.faults["anomaly: SIGTERM ignored"] += 1
            process.kill()
            code = process.wait()
        if code != 0:
            self.note("%s exited %s after SIGTERM" % (replica, code))
            self.faults["anomaly: SIGTERM exit != 0"] += 1
        time.sleep(delay)
        self.later(0, "restart " + replica, lambda: self.restart(replica))

    def thaw(self, replica):
        os.kill(self.replicas[replica].pid, signal.SIGCONT)
        self.frozen.discard(replica)

    def redis_back(self):
        self.start_redis()
        self.redis_fault = None

    def end_oom(self):
        for _ in range(50):
            try:
                self.r("CONFIG", "SET", "maxmemory", "0")
                break
            except Exception:
                time.sleep(0.1)
        self.redis_fault = None

    def reseed_in_background(self, service):
        """Seeding retries while Redis is down or out of memory: never on the fault loop's thread."""
        thread = threading.Thread(target=self.reseed, args=(service,), daemon=True)
        thread.start()
        self.reseeds.append(thread)

    def reseed(self, service):
        ok = self.seed_service(service)
        self.service_busy.discard(service)
        if not ok:
            self.note("re-seed of %s failed" % service)
            self.faults["anomaly: re-seed failed"] += 1

    # -- the run ------------------------------------------------------------------------------------
    def run(self):
        print("CHAOS_SEED=%d CHAOS_SECONDS=%g  (replay: CHAOS_SEED=%d make chaos)" % (self.seed, self.seconds, self.seed), flush=True)
        print("work folder: %s" % self.dir, flush=True)
        self.setup()
        self.note("started redis-server :%d (AOF, fsync always), provider %s, %s; services %s"
                  % (self.redis_port, self.provider_url, ", ".join(REPLICAS), ", ".join(SERVICES)))
        for target, args in [(self.subscriber, ()), (self.poller, ()), (self.cmdline_sampler, ()),
                             (self.pusher, ()), (self.caller, (1,)), (self.caller, (2,))]:
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            self.threads.append(thread)

        rng = random.Random("%s:faults" % self.seed)
        deadline = time.time() + self.seconds
        next_fault = time.time() + rng.uniform(2, 4)
        while time.time() < deadline:
            self.run_followups()
            if time.time() >= next_fault:
                self.inject(rng)
                next_fault = time.time() + rng.uniform(1.5, 4)
            time.sleep(0.05)

        self.quiet()
        return self.check()

    def quiet(self):
        self.note("faults stopped; quiet period: load stops, everything is restored")
        provider_admin(self.provider_url, "/admin/mode", {"mode": "normal"})
        self.stop_load.set()
        for thread in self.threads[3:]:
            thread.join(90)
        for thread in self.reseeds:
            thread.join(30)
        quiet_started = time.time()
        deadline = quiet_started + 3 * LIFETIME + 15
        while time.time() < deadline:  # a SIGTERMed replica comes back through its follow-up
            self.run_followups(everything=True)
            if all(self.replicas.get(r) is not None and self.replicas[r].poll() is None and r not in self.frozen for r in REPLICAS):
                break
            time.sleep(0.2)
        else:
            self.note("not every replica is running at the start of the quiet period")
        self.settled = False
        while time.time() < deadline:
            try:
                ledger = provider_admin(self.provider_url, "/admin/ledger")
                refreshed = {c["client"] for c in ledger["calls"] if c["outcome"] == "ok" and c["start"] > quiet_started}
                records = [self.record(s) for s in SERVICES]
                now_ms = int(self.r("TIME")[0]) * 1000
                healthy = all(r and r["status"] == "ok" and r["expires_at"] > now_ms for r in records)
                lists_empty = self.r("LLEN", REQUESTS) == 0 and all(self.r("LLEN", key) == 0 for key in self.processing_lists())
                if healthy and lists_empty and refreshed >= {s + "-client" for s in SERVICES} and not ledger["inflight"]:
                    self.settled = True
                    break
            except Exception:
                pass
            time.sleep(0.5)
        time.sleep(1.5)  # the last change messages and polls
        self.stop_watch.set()
        for thread in self.threads[:3]:
            thread.join(5)
        self.note("quiet period over after %.1f s (%s)" % (time.time() - quiet_started, "settled" if self.settled else "did NOT settle"))

    def processing_lists(self):
        keys, cursor = [], "0"
        while True:
            cursor, batch = self.r("SCAN", cursor, "MATCH", "{%s}:processing:*" % REQUESTS, "COUNT", 1000)
            keys += batch
            if cursor == "0":
                return keys

    # -- the checks ---------------------------------------------------------------------------------
    def check(self):
        ledger = provider_admin(self.provider_url, "/admin/ledger")
        issued = provider_admin(self.provider_url, "/admin/issued")
        with open(self.log_path("ledger.json"), "w") as f:
            json.dump(ledger, f, indent=1)  # the provider's records (token fingerprints only), for post-mortems
        calls = [c for c in ledger["calls"] if c["grant"] == "refresh_token"]
        results = []  # (name, ok, detail)

        # 1. One provider call per credential at a time.
        overlaps, by_client = [], collections.defaultdict(list)
        for call in calls:
            by_client[call["client"]].append(call)
        for client, runs in by_client.items():
            runs.sort(key=lambda c: c["start"])
            latest = None
            for call in runs:
                if latest is not None and call["start"] < latest["end"]:
                    overlaps.append("%s: #%d (%s, %s-%s) and #%d (%s, %s-%s)" % (
                        client, latest["n"], latest["caller"], hms(latest["start"]), hms(latest["end"]),
                        call["n"], call["caller"], hms(call["start"]), hms(call["end"])))
                if latest is None or call["end"] > latest["end"]:
                    latest = call
        successes = [c for c in calls if c["outcome"] == "ok"]
        results.append(("no two refresh calls for one credential at once", not overlaps and len(successes) > 0,
                        "%d refresh calls (%d rotated) over %d credentials; %d overlapping%s" % (
                            len(calls), len(successes), len(by_client), len(overlaps), self.listing(overlaps))))

        # 2. invalid_grant only from revocations.
        kinds = ledger["invalid_grant"]
        others = [c for c in calls if c["outcome"] and c["outcome"].startswith("invalid_grant_") and c["outcome"] != "invalid_grant_revoked"]
        explained = [self.explain_invalid_grant(c, ledger) for c in others]
        results.append(("invalid_grant only after a revocation", not others,
                        "caused by revocation: %d; other: %d (reused %d, unknown %d, forced %d)%s" % (
                            kinds["revoked"], len(others), kinds["reused"], kinds["unknown"], kinds["forced"], self.listing(explained))))

        # 3. Every stored refresh token is one the provider accepts; every service healthy.
        valid = {t["fp"]: t for t in ledger["tokens"] if t["state"] == "valid"}
        token_problems, health = [], []
        now_ms = int(self.r("TIME")[0]) * 1000
        for service in SERVICES:
            fp = self.stored_secret_fp(service)
            info = valid.get(fp)
            if fp is None:
                token_problems.append("%s: no refresh token stored" % service)
            elif info is None or info["client"] != service + "-client":
                state = next((t for t in ledger["tokens"] if t["fp"] == fp), None)
                token_problems.append("%s: stored token %s is %s at the provider" % (
                    service, fp, "unknown" if state is None else "%s (issued by %s at %s, %s at %s)" % (
                        state["state"], state["issued_by"] or "?", hms(state["issued_at"]), state["state"], hms(state["used_at"] or 0))))
            record = self.record(service)
            if not record or record["status"] != "ok" or record["expires_at"] <= now_ms:
                health.append("%s: %s" % (service, "no record" if not record else "status %s, expires in %.1f s" % (
                    record["status"], (record["expires_at"] - now_ms) / 1000.0)))
        results.append(("stored refresh token is the one the provider accepts", not token_problems,
                        "%d services checked%s" % (len(SERVICES), self.listing(token_problems))))
        results.append(("every service healthy after the quiet period", not health,
                        "records ok and unexpired" if not health else "; ".join(health)))

        # 4. Versions only increase: change channel, polled records, audit streams.
        version_errors, counts = list(self.version_errors), []
        for service in SERVICES:
            entries = self.r("XRANGE", "%s:{%s}:events" % (PREFIX, service), "-", "+")
            last, writes = None, 0
            for entry_id, flat in entries:
                fields = dict(zip(flat[0::2], flat[1::2]))
                if fields.get("event") in ("refreshed", "failed", "needs_reauth", "seeded") and fields.get("version", "").isdigit():
                    version = int(fields["version"])
                    writes += 1
                    if last is not None and version <= last:
                        version_errors.append("%s events stream: %s version %d after %d (entry %s)" % (service, fields["event"], version, last, entry_id))
                    last = version
            distinct = len(set(self.published[service]) | set(self.polled[service]))
            counts.append("%s %d versions (%d published, %d polled, %d stream writes)" % (
                service, distinct, len(self.published[service]), len(self.polled[service]), writes))
            if len(self.published[service]) < 3 or len(self.polled[service]) < 3 or writes < 3:
                version_errors.append("%s: too few versions observed to judge" % service)
        results.append(("record versions only increase", not version_errors,
                        "; ".join(counts) + self.listing(version_errors)))

        # 5. Forced refreshes: bounded, and every request answered.
        early, forced_problems = collections.Counter(), []
        for client, runs in by_client.items():
            rotated = [c for c in runs if c["outcome"] == "ok"]
            for previous, call in zip(rotated, rotated[1:]):
                due = previous["start"] + previous["lifetime"] - min(BUFFER, previous["lifetime"] / 2)
                if call["start"] < due - 0.5:
                    early[client[:-len("-client")]] += 1
        for service in SERVICES:
            if early[service] > len(self.allowed[service]):
                forced_problems.append("%s: %d refreshes before the token was due, but only %d distinct versions were current when a forced refresh was asked" % (
                    service, early[service], len(self.allowed[service])))
        for service in SERVICES:
            # A forced refresh names the smallest pending version: one only an oversized request
            # named means that request was served, not dropped.
            only_oversized = self.oversized[service] - self.allowed[service]
            for entry_id, flat in self.r("XRANGE", "%s:{%s}:events" % (PREFIX, service), "-", "+"):
                fields = dict(zip(flat[0::2], flat[1::2]))
                if fields.get("event") == "forced" and fields.get("version", "").isdigit() and int(fields["version"]) in only_oversized:
                    forced_problems.append("%s: forced refresh %s for version %s, named only by an oversized (> %d bytes) request" % (
                        service, entry_id, fields["version"], HANDLED_LIMIT))
        if sum(self.pushed.values()) == 0 or self.calls["newer"] == 0:
            forced_problems.append("no forced requests were made")
        results.append(("forced refreshes: provider calls <= distinct current versions asked", not forced_problems,
                        "early refreshes %s; versions asked %s; pushed %s (%d refused by Redis); baton get --newer-than %d%s" % (
                            dict(early), {s: len(v) for s, v in self.allowed.items()}, dict(self.pushed), self.push_refused,
                            self.calls["newer"], self.listing(forced_problems))))
        left = {REQUESTS: self.r("LLEN", REQUESTS)}
        for key in self.processing_lists():
            left[key] = self.r("LLEN", key)
        waiting = {k: v for k, v in left.items() if v}
        samples = []
        for key, count in waiting.items():
            for entry in self.r("LRANGE", key, 0, 4):
                samples.append("%s: %s" % (key, entry[:80] + ("... (%d bytes)" % len(entry) if len(entry) > 80 else "")))
        results.append(("every forced request acknowledged (request lists empty)", not waiting,
                        "%d lists checked; %s%s" % (len(left), "all empty" if not waiting else "left: %s" % waiting, self.listing(samples))))

        # 6. No secret anywhere but a record's access_token.
        results.append(self.check_secrets(issued))
        return results

    def explain_invalid_grant(self, call, ledger):
        token = next((t for t in ledger["tokens"] if t["fp"] == call["presented"]), None)
        text = "#%d %s by %s at %s: %s" % (call["n"], call["client"], call["caller"], hms(call["start"]), call["outcome"])
        if token is not None:
            rotating = next((c for c in ledger["calls"] if c["presented"] == call["presented"] and c["issued"]), None)
            text += "; token %s issued by %s at %s" % (token["fp"], token["issued_by"] or "?", hms(token["issued_at"]))
            if rotating:
                text += ", already rotated by #%d (%s) at %s" % (rotating["n"], rotating["caller"], hms(rotating["start"]))
            window = [text2 for t, text2 in self.timeline if token["issued_at"] - 1 <= t <= call["start"] + 0.5]
            if window:
                text += "; faults meanwhile: " + " | ".join(window[-4:])
        return text

    def check_secrets(self, issued):
        """Searches every log, stderr, event, record field but access_token, and argument list
        for any refresh token, access token or client secret (or 16 hex digits of one), and for
        the encryption key (base64, matched whole)."""
        with open(self.keys_file) as f:
            keys = [line.split(":", 1)[1].strip() for line in f if ":" in line]
        windows = {}
        for kind, tokens in (("refresh token", issued["refresh_tokens"]), ("access token", issued["access_tokens"]),
                             ("client secret", list(self.client_secrets.values()))):
            for token in tokens:
                body = re.sub(r"^(rt-|at-\d+-|cs)", "", token)
                for i in range(len(body) - 15):
                    windows[body[i:i + 16]] = kind
        hits, places = [], []

        def scan(where, text):
            places.append(where)
            if any(key in text for key in keys):
                hits.append("encryption key in %s" % where)
            for run in re.findall(r"[0-9a-f]{16,}", text):
                for i in range(len(run) - 15):
                    kind = windows.get(run[i:i + 16])
                    if kind:
                        hits.append("%s in %s" % (kind, where))
                        return

        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".log") and name not in ("provider.log", "faults.log"):
                with open(self.log_path(name), errors="replace") as f:
                    scan(name, f.read())
        for service in SERVICES:
            for entry_id, flat in self.r("XRANGE", "%s:{%s}:events" % (PREFIX, service), "-", "+"):
                scan("event %s of %s" % (entry_id, service), " ".join(flat))
        for text in self.record_texts:
            scan("a %s record field" % json.loads(text).get("service"), text)
        for argv in self.cmdlines:
            scan("argv %s" % " ".join(argv[:3]), " ".join(argv))
        vacuous = not windows or not places or self.cmdline_samples == 0 or not self.record_texts
        return ("no secret in logs, stderr, events, records, argv", not hits and not vacuous,
                "%d secrets searched in %d places (%d log files, %d records, %d argument lists from %d samples)%s" % (
                    len(issued["refresh_tokens"]) + len(issued["access_tokens"]) + len(self.client_secrets), len(places),
                    len([p for p in places if p.endswith(".log")]), len(self.record_texts), len(self.cmdlines), self.cmdline_samples,
                    self.listing(sorted(set(hits))) + ("; nothing was sampled" if vacuous else "")))

    @staticmethod
    def listing(items, limit=6):
        if not items:
            return ""
        shown = ["\n        - " + item for item in items[:limit]]
        if len(items) > limit:
            shown.append("\n        - ... and %d more" % (len(items) - limit))
        return "".join(shown)

    def report(self, results):
        print("\nFaults injected (CHAOS_SEED=%d)" % self.seed)
        for kind, count in sorted(self.faults.items(), key=lambda kv: (kv[0].startswith(("skipped", "anomaly")), kv[0])):
            print("  %-45s %4d" % (kind, count))
        print("  %-45s %4d" % ("total injected", sum(v for k, v in self.faults.items() if not k.startswith(("skipped", "anomaly")))))
        print("Load: %s" % ", ".join("%s %d" % kv for kv in sorted(self.calls.items())))
        print("\nInvariants")
        for name, ok, detail in results:
            print("  %s  %-62s %s" % ("PASS" if ok else "FAIL", name, detail))

    def cleanup(self):
        self.stop_load.set()
        self.stop_watch.set()
        for process in self.children:
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGCONT)
                    process.terminate()
                except OSError:
                    pass
        deadline = time.time() + 25
        for process in self.children:
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main():
    if not os.access(BATON, os.X_OK):
        sys.exit("no baton executable at %s: run `make build` first" % BATON)
    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1, 10**9))
    seconds = float(os.environ.get("CHAOS_SECONDS") or 120)
    chaos = Chaos(seed, seconds)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    code = 2
    try:
        results = chaos.run()
        chaos.report(results)
        code = 0 if all(ok for _, ok, _ in results) else 1
    except KeyboardInterrupt:
        print("\nInterrupted.")
    except Exception as error:
        import traceback
        traceback.print_exc()
        print("\nThe chaos run itself failed: %s" % error, file=sys.stderr)
    finally:
        chaos.cleanup()
    if code == 0:
        shutil.rmtree(chaos.dir, ignore_errors=True)
        print("\nEvery invariant held (CHAOS_SEED=%d)." % seed)
    else:
        print("\n%s CHAOS_SEED=%d; replay with CHAOS_SEED=%d CHAOS_SECONDS=%g make chaos. Logs kept in %s" % (
            "Invariants FAILED." if code == 1 else "Run aborted.", seed, seed, seconds, chaos.dir))
    sys.exit(code)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""`make demo`: Baton's main job on a private, throwaway setup.

Starts a redis-server (temp dir, loopback, free port), the fake OAuth provider (10-second tokens,
rotating refresh tokens), three `baton serve` replicas and a few worker threads that fetch tokens
with `baton get` and now and then report a 401 (`baton get --newer-than`). Seeds the services,
shows a live view for DEMO_SECONDS (default 60) or until Ctrl-C, prints a summary, and stops
everything it started.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testbed  # noqa: E402

BATON = os.environ.get("BATON", os.path.join(testbed.ROOT, ".build", "debug", "baton"))
SERVICES = ["crm", "billing", "mail"]
SECONDS = float(os.environ.get("DEMO_SECONDS", "60"))
WORKERS = 4


class Demo:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="baton-demo.")
        self.processes = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.fetches = self.expired = self.reported_401 = self.forced_answered = self.worker_errors = 0
        self.env = dict(os.environ)

    def spawn(self, name, args, **kwargs):
        log = open(os.path.join(self.dir, name + ".log"), "w")
        process = subprocess.Popen(args, stdout=kwargs.pop("stdout", log), stderr=log,
                                   env=kwargs.pop("env", self.env), start_new_session=True, **kwargs)
        self.processes.append((name, process))
        return process

    def provider_admin(self, path, body=None):
        return testbed.provider_admin(self.provider_url, path, body, timeout=5)

    def baton(self, *args, check=True):
        result = subprocess.run([BATON, *args], capture_output=True, text=True, env=self.env, timeout=30)
        if check and result.returncode != 0:
            raise RuntimeError("baton %s failed (%d): %s" % (" ".join(args), result.returncode, result.stderr.strip()))
        return result

    def start(self):
        redis_port = testbed.free_port()
        self.spawn("redis", testbed.redis_server_args(redis_port, self.dir))
        if not testbed.wait_for_redis(redis_port):
            raise RuntimeError("redis-server did not start (see %s/redis.log)" % self.dir)
        self.env["BATON_REDIS_URL"] = "redis://127.0.0.1:%d/0" % redis_port

        clients = ["%s-client:%s-secret" % (s, s) for s in SERVICES]
        _, self.provider_url = testbed.start_provider(10, clients, popen=lambda args, **kw: self.spawn("provider", args, **kw))

        services = {}
        for service in SERVICES:
            secret_file = os.path.join(self.dir, service + "-client-secret")
            testbed.write_secret_file(secret_file, service + "-secret")
            services[service] = {"token_url": self.provider_url + "/token", "client_id": service + "-client",
                                 "client_secret_file": secret_file, "refresh_buffer": "3s"}
        # Three replicas on one host would clash on the default http.listen.
        config = {"lock_ttl": "10s", "forced_refresh_min_interval": "2s", "services": services,
                  "encryption": {"keys_file": testbed.write_keys_file(BATON, self.dir)}, "http": {"listen": "off"}}
        self.config = os.path.join(self.dir, "baton.json")
        with open(self.config, "w") as f:
            json.dump(config, f, indent=2)
        self.env["BATON_CONFIG"] = self.config
        self.baton("config", "check", self.config)

        for service in SERVICES:
            token = self.provider_admin("/admin/seed", {"client_id": service + "-client"})["refresh_token"]
            subprocess.run([BATON, "seed", service, "--refresh-token-file", "-"], input=token, text=True, env=self.env,
                           check=True, capture_output=True)
        for replica in (1, 2, 3):
            self.spawn("replica-%d" % replica, [BATON, "serve", "--id", "replica-%d" % replica])
        print("Started: redis-server %s, fake OAuth provider %s (10 s tokens, rotating refresh tokens),"
              % (self.env["BATON_REDIS_URL"], self.provider_url))
        print("three `baton serve` replicas and %d worker threads. Files in %s" % (WORKERS, self.dir))

    def worker(self, number):
        rng = random.Random(number)
        while not self.stop.is_set():
            service = rng.choice(SERVICES)
            result = self.baton("get", service, "--json", "--wait", "5s", check=False)
            with self.lock:
                if result.returncode != 0:
                    self.worker_errors += 1
                    continue
                record = json.loads(result.stdout)
                self.fetches += 1
                if record["expires_at"] <= time.time() * 1000:
                    self.expired += 1
            if rng.random() < 0.08:
                # The API said 401 for this token: ask for one newer than its version.
                with self.lock:
                    self.reported_401 += 1
                newer = self.baton("get", service, "--newer-than", str(record["version"]), "--wait", "10s", "--json", check=False)
                if newer.returncode == 0:
                    with self.lock:
                        self.forced_answered += 1
            self.stop.wait(rng.uniform(0.2, 0.6))

    def view(self, elapsed):
        status = json.loads(self.baton("status", "--json").stdout)
        stats = self.provider_admin("/admin/stats")
        calls = stats.get("by_client", {})
        print("\n-- %3.0f s  %-10s %8s %11s %-12s %14s" % (elapsed, "service", "version", "expires in", "refreshed by", "provider calls"))
        for row in status:
            expires = "%.1f s" % (row.get("expires_in_ms", 0) / 1000.0) if "expires_in_ms" in row else "-"
            print("          %-10s %8s %11s %-12s %14d" % (row["service"], row.get("version", "-"), expires,
                                                       row.get("refreshed_by", "-"), calls.get(row["service"] + "-client", {}).get("calls", 0)))

    def summary(self):
        stats = self.provider_admin("/admin/stats")
        refreshed = forced = 0
        for service in SERVICES:
            events = subprocess.run(["redis-cli", "-u", self.env["BATON_REDIS_URL"], "--no-raw", "XRANGE",
                                     "oauth:{%s}:events" % service, "-", "+"], capture_output=True, text=True).stdout
            refreshed += events.count('"refreshed"')
            forced += events.count('"forced"')
        print("\n== Summary")
        print("refreshes: %d   provider calls: %d   forced refreshes: %d   invalid_grant: %d"
              % (refreshed, stats["token_requests"], forced, stats["invalid_grant"]))
        print("worker fetches: %d   expired tokens handed out: %d   401s reported: %d (answered with a newer token: %d)   worker errors: %d"
              % (self.fetches, self.expired, self.reported_401, self.forced_answered, self.worker_errors))

    def shutdown(self):
        self.stop.set()
        # Replicas first (SIGTERM: they finish refreshes in flight and release their locks).
        for name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + 15
        for name, process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        exits = ", ".join("%s %s" % (name, process.returncode) for name, process in self.processes if name.startswith("replica"))
        print("Stopped everything (replica exit codes: %s)." % exits)
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    if not os.access(BATON, os.X_OK):
        sys.exit("no baton executable at %s: run `make build` first" % BATON)
    demo = Demo()
    exit_code = 0
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        demo.start()
        workers = [threading.Thread(target=demo.worker, args=(n,), daemon=True) for n in range(WORKERS)]
        for worker in workers:
            worker.start()
        started = time.time()
        while time.time() - started < SECONDS:
            time.sleep(min(5, SECONDS - (time.time() - started)) if SECONDS > 0 else 0)
            demo.view(time.time() - started)
        demo.stop.set()
        for worker in workers:
            worker.join(15)
        demo.summary()
    except KeyboardInterrupt:
        print("\nInterrupted.")
        try:
            demo.summary()
        except Exception:
            pass
    except Exception as error:
        print("\nThe demo failed: %s" % error, file=sys.stderr)
        exit_code = 1
    finally:
        demo.shutdown()
    sys.exit(exit_code)


if __name__ == "__main__":
    main()

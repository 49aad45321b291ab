#!/usr/bin/env python3
"""Scale run of the coordinator: N services, R replicas, a fixed time, real processes.

    python3 bench/serve_bench.py --services 10000 --lifetime 300 --replicas 1 --duration 400
    python3 bench/serve_bench.py --services 2000 --lifetime 30 --replicas 3 --duration 120

Starts a private redis-server and the fake OAuth provider (rotating refresh tokens), seeds N
services (their refresh tokens written straight into Redis in Baton's envelope format), starts R
`baton serve` replicas (release build), runs for --duration seconds and prints:
  - provider calls per refresh (1.00 means no call was wasted; a second call for the same token
    generation would also show as invalid_grant),
  - missed expiries: tokens that reached expires_at before a new one was written (from each
    service's audit stream, plus a final check of every record),
  - refresh latency p50/p99 (the replicas' own `duration_ms`, lock to persisted),
  - per replica: CPU seconds, CPU seconds in the quiet window (between the first and second wave
    of refreshes), and peak RSS.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import testbed  # noqa: E402

BATON = os.environ.get("BATON", os.path.join(testbed.ROOT, ".build", "release", "baton"))
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def redis_cli(port, commands):
    """Runs commands (lists of args) through one redis-cli, returns its raw output lines."""
    def quote(arg):
        return '"' + str(arg).replace("\\", "\\\\").replace('"', '\\"') + '"'
    script = "\n".join(" ".join(quote(a) for a in command) for command in commands) + "\n"
    result = subprocess.run(["redis-cli", "-p", str(port), "--raw"], input=script, capture_output=True, text=True)
    return result.stdout.splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--services", type=int, default=2000)
    parser.add_argument("--lifetime", type=float, default=30)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--buffer", default=None, help="refresh_buffer (default: a fifth of the lifetime)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, config) and print its path")
    args = parser.parse_args()
    if not os.access(BATON, os.X_OK):
        sys.exit("no release baton at %s: run `swift build -c release --product baton` (make bench-serve does)" % BATON)

    work = tempfile.mkdtemp(prefix="baton-bench.")
    processes = []
    try:
        port = testbed.free_port()
        processes.append(testbed.start_redis(port, work))
        provider, provider_url = testbed.start_provider(args.lifetime)
        processes.append(provider)

        def admin(path, body=None):
            return testbed.provider_admin(provider_url, path, body, timeout=60)

        names = ["svc-%05d" % i for i in range(args.services)]
        tokens = admin("/admin/seed", {"client_id": "baton-client", "count": args.services})["refresh_tokens"]
        commands = []
        for name, token in zip(names, tokens):
            envelope = json.dumps({"alg": "none", "fence": 0, "kid": None, "refresh_token": token, "v": 1}, sort_keys=True)
            commands.append(["SET", "oauth:{%s}:secret" % name, envelope])
        commands.append(["SADD", "oauth:services"] + names)
        redis_cli(port, commands)

        secret = os.path.join(work, "secret")
        testbed.write_secret_file(secret, "baton-secret")
        buffer = args.buffer or "%dms" % int(args.lifetime * 1000 / 5)
        config = {"redis_url": "redis://127.0.0.1:%d/0" % port, "max_concurrent_refreshes": 64,
                  "encryption": {"keys_file": testbed.write_keys_file(BATON, work)},
                  "services": {name: {"token_url": provider_url + "/token", "client_id": "baton-client",
                                      "client_secret_file": secret, "refresh_buffer": buffer} for name in names}}
        config_path = os.path.join(work, "baton.json")
        with open(config_path, "w") as f:
            json.dump(config, f)

        replicas = []
        started = time.time()
        for r in range(args.replicas):
            log = open(os.path.join(work, "replica-%d.log" % r), "w")
            replicas.append(subprocess.Popen([BATON, "serve", "--config", config_path, "--id", "replica-%d" % r], stderr=log))
        processes.extend(replicas)

        # The quiet window: after the first wave (every service refreshed once) and before the
        # second (the first tokens become due again).
        quiet = None
        due_again = args.lifetime - args.lifetime / 5
        while time.time() - started < args.duration:
            time.sleep(1)
            elapsed = time.time() - started
            if quiet is None and elapsed > min(due_again * 0.4, 30) and elapsed < due_again * 0.5:
                quiet = (elapsed, [cpu_seconds(p.pid) for p in replicas])
            if quiet is not None and len(quiet) == 2 and elapsed >= due_again * 0.9:
                quiet = quiet + ((elapsed, [cpu_seconds(p.pid) for p in replicas]),)
        end = time.time()
        cpu = [cpu_seconds(p.pid) for p in replicas]
        rss = [peak_rss_mb(p.pid) for p in replicas]
        for p in replicas:
            p.send_signal(signal.SIGTERM)
        exits = [p.wait(60) for p in replicas]

        stats = admin("/admin/stats")
        end_ms = int(end * 1000)
        # Records at the end: every service must hold a token that had not expired when the run ended.
        records = redis_cli(port, [["GET", "oauth:{%s}:token" % name] for name in names])
        expired_at_end = 0
        for line in records:
            try:
                if json.loads(line)["expires_at"] < end_ms:
                    expired_at_end += 1
            except (ValueError, KeyError, TypeError):
                expired_at_end += 1
        # The audit streams: when each service's tokens were written. A gap longer than a token's
        # lifetime between two writes means that token expired before its successor existed.
        stream_lines = redis_cli(port, [["XRANGE", "oauth:{%s}:events" % name, "-", "+"] for name in names])
        writes = {}
        entry_time, fields = None, []

        def close_entry():
            if entry_time is not None:
                pairs = dict(zip(fields[0::2], fields[1::2]))
                if pairs.get("event") == "refreshed":
                    writes.setdefault(pairs.get("service"), []).append(entry_time)

        for line in stream_lines:
            head = line.split("-")[0]
            if "-" in line and head.isdigit() and len(head) >= 13:
                close_entry()
                entry_time, fields = int(head), []
            else:
                fields.append(line)
        close_entry()
        refreshes = sum(len(times) for times in writes.values())
        holes = sum(1 for times in writes.values() for a, b in zip(times, times[1:]) if b - a > args.lifetime * 1000)
        latencies = []
        problems = {}
        for r in range(args.replicas):
            with open(os.path.join(work, "replica-%d.log" % r)) as f:
                for line in f:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if event.get("event") == "refreshed":
                        latencies.append(event.get("duration_ms", 0))
                    elif event.get("level") in ("warn", "error"):
                        problems[event.get("event", "?") + " " + event.get("error_class", "")] = problems.get(event.get("event", "?") + " " + event.get("error_class", ""), 0) + 1
        latencies.sort()

        def pct(p):
            return latencies[min(len(latencies) - 1, int(len(latencies) * p))] if latencies else 0

        duration = end - started
        print("services %d, lifetime %.0fs, replicas %d, run %.0fs" % (args.services, args.lifetime, args.replicas, duration))
        print("provider calls %d, refreshes written %d, provider calls per refresh %.2f, invalid_grant %d"
              % (stats["token_requests"], refreshes, stats["token_requests"] / max(1, refreshes), stats["invalid_grant"]))
        print("missed expiries: %d (tokens that expired before their successor was written), %d records expired at the end"
              % (holes, expired_at_end))
        print("refresh latency (lock to persisted): p50 %d ms, p99 %d ms, max %d ms" % (pct(0.5), pct(0.99), latencies[-1] if latencies else 0))
        if problems:
            print("warnings and errors logged: " + ", ".join("%s x%d" % (k.strip(), v) for k, v in sorted(problems.items(), key=lambda kv: -kv[1])[:8]))
        for r in range(args.replicas):
            quiet_text = ""
            if quiet is not None and len(quiet) == 3:
                (t0, c0), (t1, c1) = quiet[0:2], quiet[2:3][0]
                quiet_text = ", quiet window %.0f-%.0fs: %.2f CPU s" % (t0, t1, c1[r] - c0[r])
            print("replica-%d: CPU %.1f s over %.0f s%s, peak RSS %.1f MB, exit %s" % (r, cpu[r], duration, quiet_text, rss[r], exits[r]))
    finally:
        for p in processes:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if args.keep:
            print("work folder kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

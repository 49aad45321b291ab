#!/usr/bin/env bash
# Runs a command with BATON_REDIS_URL pointing at a private redis-server (temp dir, loopback,
# free port, no persistence) that is stopped when the command ends, Ctrl-C included.
set -euo pipefail
workdir=$(mktemp -d /tmp/baton-redis.XXXXXX)
redis_pid=""
cleanup() {
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$workdir" --save '' --appendonly no \
    --logfile "$workdir/redis.log" --daemonize no &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
export BATON_REDIS_URL="redis://127.0.0.1:$port/0"
"$@"

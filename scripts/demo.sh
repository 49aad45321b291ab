#!/usr/bin/env bash
# `make demo`: runs Baton against a private redis-server (temp dir, loopback, free port) and
# stops everything it started on exit, Ctrl-C included.
set -euo pipefail
cd "$(dirname "$0")/.."
baton=.build/debug/baton

workdir=$(mktemp -d /tmp/baton-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --dir "$workdir" --save '' --appendonly no \
    --logfile "$workdir/redis.log" --daemonize no &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
export BATON_REDIS_URL="redis://127.0.0.1:$port/0"
echo "== private redis-server on 127.0.0.1:$port (data in $workdir)"

echo "== baton ping"
$baton ping --count 1000

echo
echo "== three processes take turns on one lock with baton lock run"
for worker in 1 2 3; do
    $baton lock run demo-lock --ttl 5s --wait 10s -- \
        sh -c "echo \"  worker $worker holds demo-lock with fence \$BATON_LOCK_FENCE\"; sleep 0.3" &
    pids+=($!)
done
wait "${pids[@]:1}"
$baton lock status demo-lock

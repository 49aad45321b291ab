#!/usr/bin/env bash
# Checks the shipped Redis and Sentinel configuration files by loading each into a real process
# (`make check-deploy` runs this; no Docker needed):
#   - Deploy/sentinel/users.acl has every line of Deploy/redis/users.acl, unchanged;
#   - Deploy/sentinel/redis.conf (with its users.acl) starts a redis-server;
#   - Deploy/sentinel/sentinel.conf starts a Sentinel that monitors that server as `baton`;
#   - Deploy/tls/redis.conf (with Deploy/redis/users.acl and certificates from
#     Deploy/tls/make-certs.sh) starts a redis-server that answers over TLS and not in plain TCP,
#     and `baton ping` (the executable in $BATON, when set) reaches it with the redis_url of
#     Deploy/tls/baton.json.example and the coordinator's password in BATON_REDIS_PASSWORD; then
#     the same with mutual TLS, as Deploy/README.md describes.
# Each runs on a private loopback port from a temporary copy in which only what a container
# provides is replaced: CHANGE-ME passwords, container paths, the host names redis-1 and redis.
# The behaviour of the Sentinel deployment (replication, failover) is tested by
# Tests/BatonMultiProcessTests/ShippedSentinelTests.swift.
set -euo pipefail
deploy=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/baton-check-configs.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "check-configs: $*" >&2
    exit 1
}

for program in redis-server:redis-server redis-sentinel:redis-sentinel redis-cli:redis-tools openssl:openssl python3:python3; do
    command -v "${program%%:*}" >/dev/null 2>&1 ||
        fail "${program%%:*} is not installed: apt-get install -y ${program#*:}"
done

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# fill FILE COPY [SED-EXPRESSION...]: COPY is FILE with every CHANGE-ME-NAME placeholder set to
# "check-NAME" and the given substitutions made.
fill() {
    local file=$1 copy=$2
    shift 2
    local expressions=(-e 's/CHANGE-ME-\([A-Za-z0-9-]*\)/check-\1/g')
    for expression in "$@"; do expressions+=(-e "$expression"); done
    sed "${expressions[@]}" "$file" >"$copy"
}

# start NAME PORT COMMAND...: runs COMMAND in the background, logging to $work/NAME.log, and waits
# (10 s at most) until something on PORT answers PING (PONG, or NOAUTH when it wants a password).
# Extra redis-cli options for the PING (--tls ...) come from $cli_options.
cli_options=()
start() {
    local name=$1 port=$2
    shift 2
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do
        if redis-cli "${cli_options[@]}" -p "$port" ping 2>/dev/null | grep -qE 'PONG|NOAUTH'; then return 0; fi
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.05
    done
    fail "$name did not start from its shipped configuration. Its log:
$(cat "$work/$name.log")"
}

# The Sentinel variant's ACL file repeats the standalone one (plus its own users).
while IFS= read -r line; do
    grep -qxF -- "$line" "$deploy/sentinel/users.acl" ||
        fail "Deploy/sentinel/users.acl lacks this line of Deploy/redis/users.acl (keep them in step): ${line%%>*}..."
done <"$deploy/redis/users.acl"

# Deploy/sentinel/redis.conf and users.acl.
mkdir "$work/sentinel-redis"
fill "$deploy/sentinel/users.acl" "$work/sentinel-redis/users.acl"
fill "$deploy/sentinel/redis.conf" "$work/sentinel-redis/redis.conf" "s|/etc/redis/users.acl|$work/sentinel-redis/users.acl|"
redis_port=$(free_port)
start sentinel-redis "$redis_port" redis-server "$work/sentinel-redis/redis.conf" --port "$redis_port" \
    --bind 127.0.0.1 --dir "$work/sentinel-redis" --daemonize no
echo "Deploy/sentinel/redis.conf and users.acl: loaded by redis-server"

# Deploy/sentinel/sentinel.conf, monitoring that server.
mkdir "$work/sentinel"
fill "$deploy/sentinel/sentinel.conf" "$work/sentinel/sentinel.conf" "s/ redis-1 6379 / 127.0.0.1 $redis_port /"
sentinel_port=$(free_port)
start sentinel "$sentinel_port" redis-sentinel "$work/sentinel/sentinel.conf" --port "$sentinel_port" \
    --bind 127.0.0.1 --dir "$work/sentinel" --daemonize no
monitored=$(REDISCLI_AUTH=check-requirepass redis-cli -p "$sentinel_port" sentinel get-master-addr-by-name baton 2>&1 | tr '\n' ' ')
[ "$monitored" = "127.0.0.1 $redis_port " ] ||
    fail "the Sentinel from Deploy/sentinel/sentinel.conf does not monitor the master as 'baton': $monitored"
echo "Deploy/sentinel/sentinel.conf: loaded by redis-sentinel, monitors 'baton'"

# Deploy/tls/redis.conf with Deploy/redis/users.acl and the certificates make-certs.sh makes; then
# with mutual TLS (tls-auth-clients yes, Baton's certificate in the URL).
mkdir "$work/tls"
"$deploy/tls/make-certs.sh" "$work/tls/certs" >/dev/null
fill "$deploy/redis/users.acl" "$work/tls/users.acl"
check_tls() {
    local mode=$1 auth_clients=$2 parameters=$3
    local port
    port=$(free_port)
    fill "$deploy/tls/redis.conf" "$work/tls/redis-$mode.conf" \
        "s| /tls/| $work/tls/certs/|" "s| /run/redis-tls/redis.key| $work/tls/certs/redis.key|" \
        "s|/etc/redis/users.acl|$work/tls/users.acl|" "s|^tls-port 6379$|tls-port $port|" \
        "s|^tls-auth-clients no$|tls-auth-clients $auth_clients|"
    cli_options=(--tls --cacert "$work/tls/certs/ca.crt" --cert "$work/tls/certs/baton.crt" --key "$work/tls/certs/baton.key")
    start "tls-redis-$mode" "$port" redis-server "$work/tls/redis-$mode.conf" --bind 127.0.0.1 --dir "$work/tls" \
        --daemonize no
    cli_options=()
    if redis-cli -p "$port" ping 2>/dev/null | grep -qE 'PONG|NOAUTH'; then
        fail "Deploy/tls/redis.conf: the server answers plain TCP on its TLS port"
    fi
    [ -n "${BATON:-}" ] || return 0
    fill "$deploy/tls/baton.json.example" "$work/tls/baton-$mode.json" "s|@redis:6379/|@127.0.0.1:$port/|" \
        "s|/etc/baton/tls/|$work/tls/certs/|g" "s|tls_ca_file=[^\"]*|&${parameters//&/\\&}|"
    local url
    url=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["redis_url"])' "$work/tls/baton-$mode.json")
    # The example's URL leaves the password out: it comes from BATON_REDIS_PASSWORD, as in the compose file.
    BATON_REDIS_URL=$url BATON_REDIS_PASSWORD=check-coordinator "$BATON" ping --count 1 >"$work/ping-$mode.log" 2>&1 ||
        fail "baton ping with the redis_url of Deploy/tls/baton.json.example ($mode) failed:
$(cat "$work/ping-$mode.log")"
}
check_tls tls no ""
check_tls mutual-tls yes "&tls_cert_file=$work/tls/certs/baton.crt&tls_key_file=$work/tls/certs/baton.key"
echo "Deploy/tls/redis.conf, make-certs.sh, baton.json.example and Deploy/redis/users.acl: TLS only, mutual TLS too${BATON:+, baton ping passes}"

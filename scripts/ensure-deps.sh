#!/usr/bin/env bash
# Installs the Debian packages Baton's build, tests and demo need, but only when something is
# missing: a machine that has them all is left untouched (and needs no network).
set -euo pipefail

packages=(redis-server redis-tools redis-sentinel libhiredis-dev libmicrohttpd-dev libcurl4-openssl-dev libssl-dev openssl python3 python3-venv pkg-config prometheus)
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
[ -f /usr/include/hiredis/hiredis.h ] || missing+=(libhiredis-dev)
[ -f /usr/include/microhttpd.h ] || missing+=(libmicrohttpd-dev)
[ -f /usr/include/x86_64-linux-gnu/curl/curl.h ] || [ -f /usr/include/curl/curl.h ] || missing+=(libcurl4-openssl-dev)
[ -f /usr/include/openssl/evp.h ] || missing+=(libssl-dev)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# `make check-deploy` makes a virtual environment for its linters; Debian keeps ensurepip in python3-venv.
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "Installing missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "error: not root and no sudo. Install them with: apt-get install -y ${packages[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

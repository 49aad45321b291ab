#!/bin/sh
# Usage: first-start.sh TEMPLATE COPY [LINE...] -- COMMAND [ARGUMENT...]
#
# Sentinel rewrites the configuration file of every Redis it manages and its own, so Redis and
# Sentinel cannot run a read-only file. On the first start (COPY missing) this copies the
# read-only TEMPLATE to COPY, readable by its owner only (it holds passwords), adding each LINE
# (a replica's initial `replicaof`); later starts keep the copy and what Sentinel wrote into it.
# Then it runs COMMAND in its place.
set -eu
[ "$#" -ge 3 ] || { echo "usage: $0 TEMPLATE COPY [LINE...] -- COMMAND [ARGUMENT...]" >&2; exit 64; }
template=$1
copy=$2
shift 2
umask 077
if [ -e "$copy" ]; then
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
else
    cp "$template" "$copy.new"
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
        printf '%s\n' "$1" >>"$copy.new"
        shift
    done
    mv "$copy.new" "$copy"
fi
[ "$#" -ge 2 ] || { echo "$0: no COMMAND after --" >&2; exit 64; }
shift
exec "$@"

#!/bin/sh
# Usage: make-certs.sh [FOLDER]     (default: certs/ beside this script)
#
# Makes a private certificate authority and, signed by it, a server certificate for Redis and a
# client certificate for Baton (mutual TLS), with openssl:
#   ca.crt, ca.key           the authority (keep ca.key offline once you are done)
#   redis.crt, redis.key     Redis's certificate, valid for the names redis, localhost and
#                            127.0.0.1 (REDIS_TLS_NAMES=DNS:...,IP:... names others)
#   baton.crt, baton.key     Baton's client certificate (CN=baton)
# Keys are readable by their owner only. Refuses to overwrite an existing FOLDER/ca.key.
set -eu
folder=${1:-"$(dirname "$0")/certs"}
names=${REDIS_TLS_NAMES:-DNS:redis,DNS:localhost,IP:127.0.0.1}
days=${TLS_DAYS:-825}

if [ -e "$folder/ca.key" ]; then
    echo "$folder/ca.key exists: remove $folder to make new certificates" >&2
    exit 1
fi
mkdir -p "$folder"
chmod 755 "$folder"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# quietly COMMAND...: openssl reports progress on standard error; show it only when it fails.
quietly() {
    "$@" 2>"$work/errors" || { cat "$work/errors" >&2; exit 1; }
}

key="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
# shellcheck disable=SC2086 # $key is several words
quietly openssl req -x509 -new $key -sha256 -days 3650 -subj "/CN=Baton example CA" \
    -keyout "$folder/ca.key" -out "$folder/ca.crt"

# sign NAME EXTENSIONS: a key and a certificate signed by the authority.
sign() {
    # shellcheck disable=SC2086
    quietly openssl req -new $key -subj "/CN=$1" -keyout "$folder/$1.key" -out "$work/$1.csr"
    printf '%s\n' "$2" >"$work/$1.ext"
    quietly openssl x509 -req -sha256 -days "$days" -in "$work/$1.csr" -CA "$folder/ca.crt" -CAkey "$folder/ca.key" \
        -CAcreateserial -CAserial "$work/ca.srl" -extfile "$work/$1.ext" -out "$folder/$1.crt"
}
sign redis "basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$names"
sign baton "basicConstraints=CA:FALSE
keyUsage=digitalSignature
extendedKeyUsage=clientAuth"

chmod 644 "$folder/ca.crt" "$folder/redis.crt" "$folder/baton.crt"
echo "certificates in $folder: ca.crt, redis.crt/.key (${names}), baton.crt/.key"

#!/usr/bin/env bash
# Checks each compose file given with `docker-compose config` (the docker-compose package, no Docker
# engine needed); `make check-deploy` runs this with every shipped one.
#
# Beside a compose file without a .env, a temporary one is made (and removed): compose must refuse
# it while any variable the Baton services require is missing, with that variable's message
# (BATON_ENCRYPTION_KEYS, BATON_REDIS_PASSWORD: the `${VAR:?put VAR=...}` entries), and accept it with all
# of them (a key made by `baton keygen`, the executable in $BATON). A .env that exists is the
# user's: it is used as it is and left alone.
set -euo pipefail
: "${BATON:?set BATON to the baton executable}"
required=(BATON_ENCRYPTION_KEYS BATON_REDIS_PASSWORD)
unset_required=()
for variable in "${required[@]}"; do unset_required+=(-u "$variable"); done

fail() {
    echo "check-compose: $*" >&2
    exit 1
}

created=
cleanup() { [ -z "$created" ] || rm -f "$created"; }
trap cleanup EXIT

# config FILE: `docker-compose config -q` without the shell's values of the required variables (so
# that only the .env counts); prints compose's messages.
config() {
    env "${unset_required[@]}" docker-compose -f "$1" config -q 2>&1
}

for file in "$@"; do
    env_file=$(dirname "$file")/.env
    if [ -e "$env_file" ]; then
        output=$(config "$file") || fail "$file is not valid with its .env: $output"
        echo "$file: valid (with its own .env)"
        continue
    fi
    created=$env_file
    lines=()
    for variable in "${required[@]}"; do
        printf '%s' "${lines[@]/%/$'\n'}" >"$env_file"
        if output=$(config "$file"); then
            fail "$file starts Baton without $variable in its .env"
        fi
        # ": put VAR=" is the `${VAR:?put VAR=...}` message itself, not the expression compose may echo.
        grep -qF ": put $variable=" <<<"$output" ||
            fail "$file refuses a .env without $variable but not with its message: $output"
        lines+=("$variable=check-compose")
    done
    printf 'BATON_ENCRYPTION_KEYS=%s\nBATON_REDIS_PASSWORD=check-compose\n' "$("$BATON" keygen)" >"$env_file"
    output=$(config "$file") || fail "$file is not a valid compose file: $output"
    rm -f "$env_file"
    created=
    echo "$file: valid; refuses a .env without ${required[*]}"
done

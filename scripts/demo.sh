#!/usr/bin/env bash
# `make demo`: see scripts/demo.py. DEMO_SECONDS (default 60) sets how long it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/demo.py

#!/usr/bin/env bash
# Retention at scale (issue 19): a store holding 1,000,000 delivered changes (done deliveries,
# each with its attempt, 40 days old), its size, then the gateway's own purge (its dispatcher,
# `retention.every` after the start) while 8 clients create users, and the size after.
# bench/retention.py does the filling, the load and the figures.
# Loopback only; stops by itself. Usage: bench/retention.sh [rows] [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-1000000}"
engine="${2:-sqlite}"
[ -n "${SCIMGW_BENCH_BIN:-}" ] || cargo build --release -q -p scimgw -p vendor-sim
source bench/lib.sh
mkdir -p "$work/tenants"
# The dispatcher's first purge comes `every` after the start: time to fill the store and measure
# the writes before it.
export SCIMGW_RETENTION__EVERY="${SCIMGW_RETENTION__EVERY:-90s}"
# Info lines: the purge's own account of its writes.
export SCIMGW_BENCH_LOG_LEVEL=info
start_gateway "$engine"
if [ "$engine" = postgres ]; then store="postgres:$base|$schema"; else store="$work/scimgw.db"; fi
echo "retention: $rows delivered changes, engine $engine, $(nproc) cores, binaries $bin"
URL="$url" TOKEN="$token" ROWS="$rows" STORE="$store" BIN="$bin" LOG="$work/serve.log" python3 bench/retention.py

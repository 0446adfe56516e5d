#!/usr/bin/env bash
# Runs the single-request workloads of scimgw-load against a release `scimgw serve` on a fresh
# store, and prints each report. Usage: bench/run.sh [sqlite|postgres] [seconds] [concurrency]
# (USERS=100000 bench/run.sh … for the users created before the filter/get/patch workloads;
# SCENARIOS="create filter" for a subset; RATE=2000 paces each workload, e.g. SCENARIOS=mixed; the ceiling scenario runs first, for reference;
# SETUP_CONCURRENCY=64 creates those users at that concurrency, e.g. for SCENARIOS=group-get at concurrency 1)
# (postgres uses SCIMGW_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test, and a
# fresh schema). Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${1:-sqlite}"
seconds="${2:-10}"
concurrency="${3:-64}"
[ -n "${SCIMGW_BENCH_BIN:-}" ] || cargo build --release -q -p scimgw -p scimgw-load
source bench/lib.sh
start_gateway "$engine"
export SCIMGW_LOAD_TOKEN="$token"
echo "engine $engine, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, concurrency $concurrency, ${seconds}s per workload"
users="${USERS:-10000}"
for scenario in ${SCENARIOS:-ceiling create filter get patch}; do
  $bin/scimgw-load --base-url "$url" --scenario "$scenario" --users "$users" --seconds "$seconds" \
    --requests 10000000 --concurrency "$concurrency" ${RATE:+--rate "$RATE"} \
    ${SETUP_CONCURRENCY:+--setup-concurrency "$SETUP_CONCURRENCY"}
  echo
done
echo "peak RSS of the gateway: $(grep VmHWM /proc/$gw/status | awk '{print $2, $3}')"

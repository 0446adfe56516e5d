#!/usr/bin/env bash
# Runs the single-request workloads of scimgw-load against a release `scimgw serve` on a fresh
# store, and prints each report. Usage: bench/run.sh [sqlite|postgres] [seconds] [concurrency]
# (USERS=100000 bench/run.sh … for the users created before the filter/get/patch workloads;
# SCENARIOS="create filter" for a subset; RATE=2000 paces each workload, e.g. SCENARIOS=mixed; the ceiling scenario runs first, for reference)
# (postgres uses SCIMGW_BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test, and a
# fresh schema). Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${1:-sqlite}"
seconds="${2:-10}"
concurrency="${3:-64}"
cargo build --release -q -p scimgw -p scimgw-load
bin=target/release
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export SCIMGW_LISTEN="127.0.0.1:$port" SCIMGW_TENANTS_DIR="$work/tenants" SCIMGW_LOG__LEVEL=warn
pid=""
schema=""
base="${SCIMGW_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$schema" ]; then psql "$base" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
if [ "$engine" = postgres ]; then
  schema="bench_$(date +%s)"
  psql "$base" -qc "CREATE SCHEMA $schema"
  export SCIMGW_STORE__URL="$base?options=-csearch_path%3D$schema" SCIMGW_STORE__POOL_SIZE=16
else
  export SCIMGW_STORE__URL="sqlite://$work/scimgw.db"
fi
$bin/scimgw tenant add bench >/dev/null
token=$($bin/scimgw key issue --tenant bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
$bin/scimgw serve 2>"$work/serve.log" &
pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
export SCIMGW_LOAD_TOKEN="$token"
url="http://127.0.0.1:$port/scim/v2"
echo "engine $engine, $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, concurrency $concurrency, ${seconds}s per workload"
users="${USERS:-10000}"
for scenario in ${SCENARIOS:-ceiling create filter get patch}; do
  $bin/scimgw-load --base-url "$url" --scenario "$scenario" --users "$users" --seconds "$seconds" \
    --requests 10000000 --concurrency "$concurrency" ${RATE:+--rate "$RATE"}
  echo
done
echo "peak RSS of the gateway: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"

#!/usr/bin/env bash
# Peak RSS of a release `scimgw serve` answering `GET /Users?sortBy=emails.value&count=10` (an
# attribute without a column: sorted in Rust) on USERS users (default 100,000), one request and
# then PARALLEL at once. Usage: bench/sort_rss.sh [sqlite|postgres] [parallel]
# (SCIMGW_BENCH_BIN=DIR: binaries built elsewhere, e.g. of the commit before). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${1:-sqlite}"
parallel="${2:-4}"
[ -n "${SCIMGW_BENCH_BIN:-}" ] || cargo build --release -q -p scimgw -p scimgw-load
source bench/lib.sh
start_gateway "$engine"
users="${USERS:-100000}"
started=$(date +%s)
$bin/scimgw-load --base-url "$url" --token "$token" --scenario create --requests "$users" --seconds 100000 \
  --concurrency 32 >"$work/load.txt"
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$gw/status"; }
echo "engine $engine, $users users created in $(($(date +%s) - started)) s; gateway RSS $(($(kb VmRSS) / 1024)) MB"
query="$url/Users?sortBy=emails.value&sortOrder=descending&count=10"
for n in 1 "$parallel"; do
  echo 5 >"/proc/$gw/clear_refs" # VmHWM back to the current RSS
  before=$(kb VmRSS)
  t0=$(date +%s%N)
  curls=()
  for i in $(seq 1 "$n"); do
    curl -sf -H "Authorization: Bearer $token" "$query" -o "$work/sorted.$i.json" &
    curls+=("$!")
  done
  for p in "${curls[@]}"; do wait "$p"; done
  ms=$((($(date +%s%N) - t0) / 1000000))
  peak=$(kb VmHWM)
  total=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totalResults"])' "$work/sorted.1.json")
  [ "$total" = "$users" ] || { echo "totalResults $total, expected $users"; exit 1; }
  echo "$n sorted request(s) at once: RSS before $((before / 1024)) MB, peak $((peak / 1024)) MB (+$(((peak - before) / 1024)) MB), $ms ms"
done

#!/usr/bin/env bash
# The worst 1 MiB requests one tenant can send, against a release `scimgw serve` on a fresh store,
# while another tenant creates users at 100/s: each attack's answers and time, and the other
# tenant's write latency before and during it (scimgw-hostile; RELIABILITY.md, "Hostile input").
# Usage: bench/hostile.sh [sqlite|postgres] (MEMBERS=10000 for the group attacks' group size,
# REPEAT=3 for the times each attack is sent). SCIMGW_BENCH_BIN=DIR serves with DIR/scimgw (e.g.
# another commit's) and builds nothing. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${1:-sqlite}"
[ -n "${SCIMGW_BENCH_BIN:-}" ] || cargo build --release -q -p scimgw -p scimgw-load
tool="${SCIMGW_HOSTILE_TOOL:-target/release/scimgw-hostile}"
source bench/lib.sh
start_gateway "$engine"
$bin/scimgw tenant add victim >/dev/null
victim=$($bin/scimgw key issue --tenant victim --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "engine $engine, $(nproc) cores, gateway $($bin/scimgw --version 2>/dev/null || echo '?')"
SCIMGW_HOSTILE_TOKEN="$token" SCIMGW_VICTIM_TOKEN="$victim" "$tool" --base-url "$url" \
  --members "${MEMBERS:-10000}" --repeat "${REPEAT:-3}" ${ONLY:+--only "$ONLY"}
echo "peak RSS of the gateway: $(grep VmHWM /proc/$gw/status | awk '{print $2, $3}')"

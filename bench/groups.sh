#!/usr/bin/env bash
# Routing by group at scale (issue: route users to targets by group): a release `scimgw serve` on
# a fresh store, one tenant with one target (a generic simulator) whose scope reads group names,
# and bench/groups.py: a member add to a 100,000-member group, its rename (fan-out in pages, with
# other users' PATCHes measured meanwhile) and its delete. Loopback only; stops by itself.
# Usage: bench/groups.sh [users] [sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-100000}"
engine="${2:-sqlite}"
[ -n "${SCIMGW_BENCH_BIN:-}" ] || cargo build --release -q -p scimgw -p vendor-sim
source bench/lib.sh
mkdir -p "$work/tenants"
sport=$(free_port)
printf '%s' "sim-$RANDOM$RANDOM" > "$work/sim.token"
VENDOR_SIM_TOKEN="$(cat "$work/sim.token")" $bin/vendor-sim --listen "127.0.0.1:$sport" --profile generic >"$work/sim.log" 2>&1 &
pids+=($!)
cat > "$work/tenants/bench.toml" <<TOML
[[targets]]
name = "scoped"
kind = "scim"
base_url = "http://127.0.0.1:$sport/scim/v2"
token_file = "$work/sim.token"
scope = 'groups.display sw "Elsewhere"'
TOML
start_gateway "$engine"
if [ "$engine" = postgres ]; then store="postgres:$base|$schema"; else store="$work/scimgw.db"; fi
echo "groups at scale: $users users, engine $engine, $(nproc) cores"
URL="$url" TOKEN="$token" USERS="$users" STORE="$store" python3 bench/groups.py
echo "peak RSS of the gateway: $(grep VmHWM /proc/$gw/status | awk '{print $2, $3}')"

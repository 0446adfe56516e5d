#!/usr/bin/env bash
# Entra's initial cycle end to end: a release `scimgw serve` on a fresh SQLite store, one tenant
# with three targets — the Jostle, Joyn FSM and JumpCloud simulators (vendor-sim, strict profiles)
# — and scimgw-load's entra-initial scenario. Reports the IdP side, the time to drain the outbox
# after the load stops and the end-to-end lag at each simulator. Loopback only; stops by itself.
# Usage: bench/e2e.sh [users] [concurrency] [dispatcher concurrency] [engine: sqlite|postgres]
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-10000}"
concurrency="${2:-64}"
dispatch="${3:-64}"
engine="${4:-sqlite}"
[ -n "${SCIMGW_BENCH_BIN:-}" ] || cargo build --release -q -p scimgw -p scimgw-load -p vendor-sim
source bench/lib.sh
mkdir -p "$work/tenants"
sims=()
sim_pids=()
: > "$work/tenants/bench.toml"
for spec in "jostle jostle jostle" "joyn joyn-fsm joyn-fsm" "jumpcloud jumpcloud jumpcloud"; do
  set -- $spec
  name=$1; kind=$2; profile=$3
  port=$(free_port)
  token="sim-$name-$RANDOM$RANDOM"
  printf '%s' "$token" > "$work/$name.token"
  chmod 600 "$work/$name.token"
  VENDOR_SIM_TOKEN="$token" $bin/vendor-sim --listen "127.0.0.1:$port" --profile "$profile" >"$work/$name.log" 2>&1 &
  pids+=($!)
  suffix=""; extra=""
  if [ "$name" = jumpcloud ]; then suffix="/?aadOptscim062020"; extra='username_from = "userName_local_part"'; fi
  cat >> "$work/tenants/bench.toml" <<TOML
[[targets]]
name = "$name"
kind = "$kind"
base_url = "http://127.0.0.1:$port/scim/v2$suffix"
token_file = "$work/$name.token"
max_in_flight = 32
$extra

TOML
  sims+=(--sim "http://127.0.0.1:$port")
  sim_pids+=("$name=$!")
done
export SCIMGW_DISPATCHER__CONCURRENCY="$dispatch"
start_gateway "$engine"
echo "entra-initial, $users users, engine $engine, 3 simulated vendor targets, $(nproc) cores, IdP concurrency $concurrency, dispatcher concurrency $dispatch"
started=$(date +%s.%N)
SCIMGW_LOAD_TOKEN="$token" /usr/bin/time -f "CPU used by the load tool: %U s user + %S s system" $bin/scimgw-load --base-url "$url" --scenario entra-initial \
  --users "$users" --seconds 3600 --requests 100000000 --concurrency "$concurrency" --drain-timeout 900 "${sims[@]}" ${JSON:+--json}
ended=$(date +%s.%N)
echo "wall time, load start to outbox drained and logs read: $(python3 -c "print(round($ended - $started, 1))") s"
cpu="gateway $(cpu_secs "$gw") s"
for sp in "${sim_pids[@]}"; do cpu="$cpu, ${sp%%=*} $(cpu_secs "${sp#*=}") s"; done
echo "CPU used: $cpu"
echo "peak RSS of the gateway: $(grep VmHWM /proc/$gw/status | awk '{print $2, $3}'); now: $(grep -E '^Rss(Anon|File|Shmem)' /proc/$gw/status | awk '{printf "%s %s kB ", $1, $2}')"
dead=$({ curl -s "http://127.0.0.1:$port/metrics" || true; } | awk '/^scimgw_outbox_rows\{/ && /state="dead"/ {s+=$2} END {print s+0}')
echo "dead-lettered deliveries: $dead"

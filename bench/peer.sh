#!/usr/bin/env bash
# Runs scimgw-load's single-request workloads against another SCIM server installed from a
# package registry: the Python scim2-server (PyPI), as its own CLI serves it (a threading WSGI
# server, users in memory, nothing durable), on loopback. Same tool, same flags as bench/run.sh,
# so the figures compare. Usage: bench/peer.sh [seconds] [concurrency] (USERS=2000 for fewer
# users created before the filter/get/patch workloads: the server creates a few hundred a second)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
concurrency="${2:-64}"
version="0.8.3"
venv="${SCIMGW_PEER_VENV:-target/peer-venv}"
if ! "$venv/bin/python" -c "import scim2_server" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "scim2-server==$version"
fi
cargo build --release -q -p scimgw-load
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token="peer-bench-$(date +%s)"
log="$(mktemp)"
"$venv/bin/scim2-server" --hostname 127.0.0.1 --port "$port" --bearer-token "$token" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$log"' EXIT INT TERM
for _ in $(seq 1 100); do grep -q "Serving SCIM" "$log" && break; sleep 0.1; done
echo "scim2-server $version on 127.0.0.1:$port, $(nproc) cores, concurrency $concurrency, ${seconds}s per workload"
for scenario in create filter get patch; do
  target/release/scimgw-load --base-url "http://127.0.0.1:$port/v2" --token "$token" --scenario "$scenario" \
    --users "${USERS:-10000}" --seconds "$seconds" --requests 10000000 --concurrency "$concurrency"
  echo
done
echo "peak RSS of scim2-server: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"

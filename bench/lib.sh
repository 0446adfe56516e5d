# Shared by the benchmark scripts (sourced): a work dir, cleanup of what they start, the store
# (SQLite file, or a fresh PostgreSQL schema) and a release gateway with a tenant and a token.
# SCIMGW_BENCH_BIN: run binaries built elsewhere (a side-by-side run of another commit); the
# scripts then build nothing.
bin="${SCIMGW_BENCH_BIN:-target/release}"
work="$(mktemp -d)"
pids=()
schema=""
base="${SCIMGW_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$schema" ]; then psql "$base" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# start_gateway ENGINE: serves on a free port with store ENGINE (sqlite|postgres); sets `port`,
# `gw` (its pid), `token` (of tenant "bench") and `url` (the SCIM base URL).
start_gateway() {
  port=$(free_port)
  export SCIMGW_LISTEN="127.0.0.1:$port" SCIMGW_TENANTS_DIR="$work/tenants" SCIMGW_LOG__LEVEL="${SCIMGW_BENCH_LOG_LEVEL:-warn}"
  if [ "$1" = postgres ]; then
    schema="bench_$(date +%s)"
    psql "$base" -qc "CREATE SCHEMA $schema"
    export SCIMGW_STORE__URL="$base?options=-csearch_path%3D$schema" SCIMGW_STORE__POOL_SIZE=16
  else
    export SCIMGW_STORE__URL="sqlite://$work/scimgw.db"
  fi
  $bin/scimgw migrate >/dev/null   # only serve, migrate and demo create a store
  $bin/scimgw tenant add bench >/dev/null
  token=$($bin/scimgw key issue --tenant bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  $bin/scimgw serve 2>"$work/serve.log" &
  gw=$!
  pids+=("$gw")
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  url="http://127.0.0.1:$port/scim/v2"
}

# cpu_secs PID: CPU seconds (user + system) the process has used so far.
cpu_secs() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo "?"
}

#!/usr/bin/env bash
# The shipped build (jemalloc) against the system allocator under wrk:
# both nodes on core 0 (`--threads 1`, 1,000,000 codes and 10,000 rules),
# wrk on core 1, ROUNDS alternate runs of DURATION each. Loopback only;
# everything started is stopped on exit.
#
#   bash loadtest/allocator-wrk.sh
#
# Knobs (environment): ROUNDS (3), DURATION (10s), FIRST_PORT (18580).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
FIRST_PORT=${FIRST_PORT:-18580}
command -v wrk >/dev/null || { apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

echo "== building (release; jemalloc, then the system allocator into target-system/) ==" >&2
cargo build --release --bins --quiet
CARGO_TARGET_DIR=target-system cargo build --release --bin qrlaunch --quiet --no-default-features

W=$(mktemp -d /tmp/qrlaunch-allocator-wrk.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT
LT=target/release/qrlaunch-loadtest
$LT gen-table --codes 1000000 --rules 10000 --out "$W/table.ndjson"
$LT gen-requests --codes 1000000 --rules 10000 --known 98 --legacy 0 --unknown 2 --count 100000 --out "$W/codes.tsv"
UA='Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'

start() { # name binary port
  taskset -c 0 "$2" --threads 1 --listen "127.0.0.1:$3" --admin-listen "127.0.0.1:$(($3 + 1))" \
    --metrics-listen 127.0.0.1:0 --data "$W/data-$1" --table "$W/table.ndjson" --log warn >/dev/null 2>>"$W/$1.log" &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "http://127.0.0.1:$3/readyz" && return 0
    sleep 0.2
  done
  echo "not ready: $1" >&2
  exit 1
}
start jemalloc target/release/qrlaunch "$FIRST_PORT"
start system target-system/release/qrlaunch "$((FIRST_PORT + 2))"

printf '%-6s %-9s %10s %8s\n' round build req/s "p99 µs"
for round in $(seq 1 "$ROUNDS"); do
  for pair in "jemalloc:$FIRST_PORT" "system:$((FIRST_PORT + 2))"; do
    name=${pair%%:*}
    port=${pair##*:}
    # loadtest/wrk-requests.lua (shared with compare-nginx.sh) prints
    # "WRK requests rps p50 p99 p99.9 errors".
    read -r _ _ rps _ p99 _ < <(taskset -c 1 wrk -t1 -c32 -d"$DURATION" -s loadtest/wrk-requests.lua \
      "http://127.0.0.1:$port/" -- "$W/codes.tsv" "$UA" | grep '^WRK')
    printf '%-6s %-9s %10s %8s\n' "$round" "$name" "$rps" "$p99"
  done
done

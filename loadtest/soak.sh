#!/usr/bin/env bash
# Soak: qrlaunch pinned to one core, driven in open loop at 50% of its
# measured saturation rate for SOAK (default 10m); fails if any request
# fails or the server's RSS grows more than 5% after warm-up. Loopback only,
# bounded, and everything started is stopped.
#
#   bash loadtest/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CODES=${CODES:-1000000}
RULES=${RULES:-10000}
SOAK=${SOAK:-10m}
PORT=${PORT:-18490}
ADMIN_PORT=${ADMIN_PORT:-18491}
WORK=$(mktemp -d /tmp/qrlaunch-soak.XXXXXX)
QR_PID=
cleanup() { [ -n "$QR_PID" ] && kill "$QR_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

cargo build --release --bins --quiet
LT=target/release/qrlaunch-loadtest
$LT gen-table --codes "$CODES" --rules "$RULES" --out "$WORK/table.ndjson"
taskset -c 0 target/release/qrlaunch --threads 1 --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --data "$WORK/data" --table "$WORK/table.ndjson" --log warn &
QR_PID=$!
for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.2; done

SAT=$(taskset -c 1 $LT run --addr "127.0.0.1:$PORT" --duration 10s --codes "$CODES" --rules "$RULES" --json \
  | python3 -c "import json,sys; print(int(json.loads(sys.stdin.read().splitlines()[-1])['rps']))")
RATE=$((SAT / 2))
echo "saturation $SAT req/s; soaking at $RATE req/s for $SOAK" >&2
taskset -c 1 $LT soak --addr "127.0.0.1:$PORT" --rate "$RATE" --duration "$SOAK" --codes "$CODES" --rules "$RULES" \
  --pid "$QR_PID" --watch-cores 0,1 --max-requests 500000000 --label "qrlaunch soak"

#!/usr/bin/env bash
# The fleet's numbers, on one PostgreSQL and three nodes on loopback
# (deploy/fleet.sh's functions):
#   1. propagation: admin 2xx on node A to the change answering on B and C,
#      at 1 and at 200 writes per second (qrlaunch-loadtest propagation);
#   2. a 1,000,000-line import through A, timed;
#   3. a new node joining that database: start to /readyz 200;
#   4. scans on B (open loop) without and then during a 1,000,000-line
#      import through A, side by side;
#   5. (unless SKIP_10M is set) a new node joining 10,000,000 codes.
#
#   bash loadtest/fleet.sh
#
# Knobs (environment): SCAN_RATE (20000), SLOW_WRITES (30), FAST_WRITES
# (2000), SKIP_10M, PG_PORT (15432), FIRST_PORT (18180). B is pinned to
# core 0 alone; A, PostgreSQL and the load generator share core 1 (this
# machine has two), so the scans' p99 during the import includes B's own
# work of taking the import in (a rebuild from a snapshot), not A's.
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET_LIB_ONLY=1 source deploy/fleet.sh

SCAN_RATE=${SCAN_RATE:-20000}
SLOW_WRITES=${SLOW_WRITES:-30}
FAST_WRITES=${FAST_WRITES:-2000}
FIRST_PORT=${FIRST_PORT:-18180}
A=$FIRST_PORT
B=$((FIRST_PORT + 10))
C=$((FIRST_PORT + 20))
D=$((FIRST_PORT + 30))
FLEET_LOG=warn

log() { printf '\n== %s ==\n' "$*" >&2; }

log "building (release)"
cargo build --release --bins --quiet
LT=target/release/qrlaunch-loadtest

trap fleet_stop EXIT
fleet_init
RESULTS=$FLEET_DIR/results.jsonl
: >"$RESULTS"
TOKEN_FILE=$FLEET_DIR/admin-token

FLEET_CORES=1 fleet_node_start A "$A"
FLEET_CORES=0 fleet_node_start B "$B" --threads 1
FLEET_CORES=0 fleet_node_start C "$C" --threads 1
PID_B=${FLEET_PIDS[1]}

log "propagation A -> B, C: $SLOW_WRITES writes at 1/s, then $FAST_WRITES at 200/s"
taskset -c 1 $LT propagation --admin "127.0.0.1:$((A + 1))" --token-file "$TOKEN_FILE" \
  --node "127.0.0.1:$B" --node "127.0.0.1:$C" --rate 1 --writes "$SLOW_WRITES" --prefix slow --json | tee -a "$RESULTS" >&2
taskset -c 1 $LT propagation --admin "127.0.0.1:$((A + 1))" --token-file "$TOKEN_FILE" \
  --node "127.0.0.1:$B" --node "127.0.0.1:$C" --rate 200 --writes "$FAST_WRITES" --prefix fast --json | tee -a "$RESULTS" >&2

import() { # file -> prints seconds
  local t0 t1
  t0=$(date +%s.%N)
  # -T streams the file (--data-binary reads it all into memory first,
  # which fails for 10M lines); a failed import ends the script.
  curl -sS -f -o "$FLEET_DIR/import.json" -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/x-ndjson' -H 'Expect:' -X POST -T "$1" \
    "http://127.0.0.1:$((A + 1))/admin/v1/import" || {
    echo "import of $1 failed: $(cat "$FLEET_DIR/import.json" 2>/dev/null)" >&2
    exit 1
  }
  t1=$(date +%s.%N)
  python3 -c "print(round($t1 - $t0, 2))"
}

join() { # name port -> prints seconds from start to /readyz 200; stops the node
  local t0 t1 pid
  t0=$(date +%s.%N)
  FLEET_CORES=0 fleet_node_start "$1" "$2"
  t1=$(date +%s.%N)
  pid=${FLEET_PIDS[-1]}
  local rss
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  unset 'FLEET_PIDS[-1]'
  echo "$(python3 -c "print(round($t1 - $t0, 2))") $rss"
}

caught_up() { # port position
  for _ in $(seq 1 600); do
    p=$(curl -s -D - -o /dev/null "http://127.0.0.1:$1/readyz" | awk 'tolower($1) == "qrlaunch-position:" {print $2+0}')
    [ "${p:-0}" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "node on $1 did not catch up with $2" >&2
  return 1
}
position_of_a() {
  curl -s -D - -o /dev/null "http://127.0.0.1:$A/readyz" | awk 'tolower($1) == "qrlaunch-position:" {print $2+0}'
}

log "1,000,000 codes and 10,000 rules"
$LT gen-table --codes 1000000 --rules 10000 --out "$FLEET_DIR/table.ndjson"
$LT gen-requests --codes 1000000 --rules 10000 --count 100000 --out "$FLEET_DIR/mix.tsv"
secs=$(import "$FLEET_DIR/table.ndjson")
echo "{\"label\": \"import 1M lines through A\", \"seconds\": $secs}" | tee -a "$RESULTS" >&2
pos=$(position_of_a)
caught_up "$B" "$pos"
caught_up "$C" "$pos"

log "a new node joins 1,000,000 codes"
for i in 1 2 3; do
  read -r secs rss < <(join "D$i" "$D")
  echo "{\"label\": \"join 1M\", \"seconds\": $secs, \"rss_kib\": $rss}" | tee -a "$RESULTS" >&2
done

log "scans on B at $SCAN_RATE/s, open loop, 20 s: alone, then during a 1M-line import through A (at 1 s)"
scan_b() { # label
  taskset -c 1 $LT run --addr "127.0.0.1:$B" --connections 32 --duration 20s --requests "$FLEET_DIR/mix.tsv" \
    --rate "$SCAN_RATE" --label "$1" --server-pid "$PID_B" --watch-cores 0,1 --json | tail -n 1 | tee -a "$RESULTS" >&2
}
scan_b "scans on B, no import"
( sleep 1; secs=$(import "$FLEET_DIR/table.ndjson"); echo "{\"label\": \"import 1M lines through A during scans\", \"seconds\": $secs}" >>"$RESULTS" ) &
IMPORTER=$!
scan_b "scans on B during a 1M import through A"
wait "$IMPORTER"
pos=$(position_of_a)
caught_up "$B" "$pos"
scan_b "scans on B, no import (after)"

if [ -z "${SKIP_10M:-}" ]; then
  log "10,000,000 codes: import through A (B and C stopped), then a new node joins"
  for pid in "${FLEET_PIDS[@]:1:2}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
  FLEET_PIDS=("${FLEET_PIDS[0]}")
  $LT gen-table --codes 10000000 --rules 10000 --seed 7 --out "$FLEET_DIR/table10m.ndjson"
  secs=$(import "$FLEET_DIR/table10m.ndjson")
  rm -f "$FLEET_DIR/table10m.ndjson"
  echo "{\"label\": \"import 10M lines through A\", \"seconds\": $secs}" | tee -a "$RESULTS" >&2
  read -r secs rss < <(join "E" "$D")
  echo "{\"label\": \"join 11M\", \"seconds\": $secs, \"rss_kib\": $rss}" | tee -a "$RESULTS" >&2
fi

log "results"
python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}")
for r in rows:
    label = r["label"]
    if "p50_ms" in r:
        print(f"{label} at {r.get('achieved_rate', 0):.1f} writes/s: {r['changes']} arrivals, {r['lost']} lost, "
              f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms (polled every {r['poll_ms']:.0f} ms)")
    elif "rps" in r:
        errors = sum(r.get("errors", {}).values())
        print(f"{label}: {r['rps']:.0f} req/s, p50 {r['p50_us']:.0f} µs, p99 {r['p99_us']:.0f} µs, "
              f"p99.9 {r['p999_us']:.0f} µs, max {r['max_us']:.0f} µs, errors {errors}")
    elif "seconds" in r:
        extra = f", RSS {r['rss_kib']/1024:.0f} MiB" if "rss_kib" in r else ""
        print(f"{label}: {r['seconds']:.2f} s{extra}")
PY

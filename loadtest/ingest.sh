#!/usr/bin/env bash
# Ingesting a cache's log: how long 1,000,000 lines take through
# `qrlaunch ingest` into one node, alone and while the node answers scans,
# and what the ingest does to those scans' latency.
#
#   bash loadtest/ingest.sh
#
# The node: SQLite, --threads 1, pinned to core 0, 1,000,000 codes and
# 10,000 rules, --count-source cache-log. The log: 1,000,000 NDJSON lines
# as the cache would write them (90% known codes, 8% legacy URLs, 2%
# unknown codes; four kinds of phones; hits and misses), sent by
# `qrlaunch ingest --format ndjson` on core 1. Scans: the load generator on
# core 1, open loop at RATE/s for DURATION s over known codes, latency from
# each request's due time; the ingest starts 2 s into the second run.
#
# Knobs (environment): RATE (20000), DURATION (20), LINES (1000000), PORT
# (18600).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-20000}
DURATION=${DURATION:-20}
LINES=${LINES:-1000000}
PORT=${PORT:-18600}
DIR=$(mktemp -d /tmp/qrlaunch-ingest.XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
log() { printf '\n== %s ==\n' "$*" >&2; }

log "building (release)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --bins --quiet
Q=$CARGO_TARGET_DIR/release/qrlaunch
LT=$CARGO_TARGET_DIR/release/qrlaunch-loadtest

log "workload: 1,000,000 codes, 10,000 rules; $LINES log lines"
$LT gen-table --codes 1000000 --rules 10000 --out "$DIR/table.ndjson"
$LT gen-requests --codes 1000000 --rules 10000 --count 100000 --known 100 --legacy 0 --unknown 0 \
  --out "$DIR/scans.tsv"
$LT gen-requests --codes 1000000 --rules 10000 --count "$LINES" --seed 9 --out "$DIR/log.tsv"
python3 - "$DIR/log.tsv" "$DIR/log.ndjson" <<'PY'
import json, sys, time
agents = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
]
now = int(time.time()) - 120
with open(sys.argv[2], "w") as out:
    for i, line in enumerate(open(sys.argv[1])):
        host, target, status = line.rstrip("\n").split("\t")
        out.write(json.dumps({
            "time": now + i // 10000, "host": host, "target": target, "scheme": "http",
            "user_agent": agents[i % 4], "status": int(status), "cache": "hit" if i % 10 else "miss",
        }, separators=(",", ":")) + "\n")
PY
ls -l "$DIR/log.ndjson" >&2

log "the node: 1,000,000 codes on core 0"
taskset -c 0 "$Q" --threads 1 --data "$DIR/data" --listen "127.0.0.1:$PORT" \
  --admin-listen "127.0.0.1:$((PORT + 1))" --metrics-listen "127.0.0.1:$((PORT + 2))" \
  --table "$DIR/table.ndjson" --count-source cache-log --log warn >"$DIR/node.out" 2>"$DIR/node.log" &
PID=$!
for _ in $(seq 1 1200); do
  curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break
  sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" || { cat "$DIR/node.log" >&2; exit 1; }
export QRLAUNCH_ADMIN_TOKEN
QRLAUNCH_ADMIN_TOKEN=$(cat "$DIR/data/admin-token")
RESULTS=$DIR/results.jsonl
: >"$RESULTS"

ingest() { # label: sends the log, notes the time and the summary
  local t0 t1
  t0=$(date +%s.%N)
  taskset -c 1 chrt -i 0 "$Q" ingest --format ndjson --admin-url "http://127.0.0.1:$((PORT + 1))" \
    <"$DIR/log.ndjson" >"$DIR/summary.json"
  t1=$(date +%s.%N)
  python3 - "$1" "$t0" "$t1" "$DIR/summary.json" >>"$RESULTS" <<'PY'
import json, sys
summary = json.load(open(sys.argv[4]))
print(json.dumps({"label": sys.argv[1], "seconds": round(float(sys.argv[3]) - float(sys.argv[2]), 2), **summary}))
PY
  tail -n 1 "$RESULTS" >&2
}
scans() { # label [work...]
  local label=$1 work=
  shift
  if (($#)); then
    (
      sleep 2
      "$@"
    ) &
    work=$!
  fi
  taskset -c 1 "$LT" run --addr "127.0.0.1:$PORT" --connections 32 --duration "${DURATION}s" \
    --requests "$DIR/scans.tsv" --rate "$RATE" --label "$label" --server-pid "$PID" --watch-cores 0,1 \
    --json | tail -n 1 >>"$RESULTS"
  [ -n "$work" ] && wait "$work"
  tail -n 1 "$RESULTS" >&2
}

log "ingest alone"
ingest "ingest of $LINES lines, node otherwise idle"
log "scans, idle"
scans "scans, idle"
log "scans during an ingest"
scans "scans during the ingest" ingest "ingest of $LINES lines, during scans"

log "results"
python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}")
for r in rows:
    if "rps" in r:
        print(f"{r['label']:<36} {r['rps']:>7.0f} req/s  p50 {r['p50_us']:>6.0f} µs  p99 {r['p99_us']:>6.0f} µs  "
              f"p99.9 {r['p999_us']:>6.0f} µs  max {r['max_us']:>6.0f} µs  errors {sum(r.get('errors', {}).values())}")
    else:
        rate = r["read"] / r["seconds"] if r["seconds"] else 0
        print(f"{r['label']}: {r['seconds']:.2f} s ({rate:,.0f} lines/s); counted {r['counted']}, "
              f"skipped {r['skipped']} {r['skipped_by']}, dropped {r['dropped']}, given up {r['given_up']}")
PY

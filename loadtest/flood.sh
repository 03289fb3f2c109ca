#!/usr/bin/env bash
# What a flood of unique, long queries costs the scans of everyone else.
#
# A launch page for a desktop (and WeChat, and in-app browsers) carries a QR
# code. A code's page draws the code's own URL, whatever query came with it;
# a rule's page draws the scanned URL only up to 512 bytes; and the time
# spent drawing new codes is limited to a share of one core for the whole
# node (--page-qr-cpu, 10%), so neither one request's cost nor a flood's
# is unbounded. This script measures it:
# ordinary iPhone scans in open loop (RATE/s) alone, then while a second
# generator sends FLOOD_RATE desktop requests a second of each kind below;
# the ordinary scans' latency is compared side by side.
#
#   one code, no query                 the baseline: a desktop page whose QR is cached
#   one code, 2 KB unique queries      junk queries on a code (each a new URL)
#   one rule, 2 KB unique queries      legacy URLs past the 512-byte cap (no QR)
#   one rule, short unique queries     legacy URLs under the cap: a QR drawn for
#                                      each, within --page-qr-cpu
#
#   bash loadtest/flood.sh
#
# Knobs (environment): RATE (5000), FLOOD_RATE (1000), DURATION (15s), PORT
# (18380: qrlaunch; +1 admin, +2 metrics). qrlaunch runs with --threads 1
# pinned to core 0; both generators share core 1.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-5000}
FLOOD_RATE=${FLOOD_RATE:-1000}
DURATION=${DURATION:-15s}
PORT=${PORT:-18380}
DESKTOP="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

log() { printf '\n== %s ==\n' "$*" >&2; }

log "building (release)"
cargo build --release --bins --quiet
QR=target/release/qrlaunch
LT=target/release/qrlaunch-loadtest

WORK=$(mktemp -d /tmp/qrlaunch-flood.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log "workload: 1,000,000 codes, 10,000 rules; flood lists of 100,000 requests each"
$LT gen-table --codes 1000000 --rules 10000 --out "$WORK/table.ndjson"
$LT gen-requests --codes 1000000 --rules 10000 --count 100000 --known 100 --legacy 0 --unknown 0 --out "$WORK/codes.tsv"
$LT gen-requests --codes 1000000 --rules 10000 --count 100000 --known 0 --legacy 100 --unknown 0 --out "$WORK/rules.tsv"
python3 - "$WORK" <<'PY'
import random, sys
work = sys.argv[1]
rnd = random.Random(7)
junk = lambda n: "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))
codes = [l.rstrip("\n").split("\t") for l in open(f"{work}/codes.tsv")]
rules = [l.rstrip("\n").split("\t") for l in open(f"{work}/rules.tsv")]
def write(name, rows):
    with open(f"{work}/{name}.tsv", "w") as out:
        for host, target in rows:
            out.write(f"{host}\t{target}\t302\n")
(code_host, code), (rule_host, rule) = codes[0][:2], rules[0][:2]
sep = "&" if "?" in rule else "?"
n = 100_000
write("code-plain", [(code_host, code)] * n)
write("code-long", [(code_host, f"{code}?x{i}={junk(2000)}") for i in range(n)])
write("rule-long", [(rule_host, f"{rule}{sep}x{i}={junk(2000)}") for i in range(n)])
write("rule-short", [(rule_host, f"{rule}{sep}x={i:08d}") for i in range(n)])
PY

taskset -c 0 "$QR" --threads 1 --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$((PORT + 1))" \
  --metrics-listen "127.0.0.1:$((PORT + 2))" --data "$WORK/data" --table "$WORK/table.ndjson" --log warn \
  2>"$WORK/qrlaunch.log" >/dev/null &
PID_QR=$!
PIDS+=("$PID_QR")
for _ in $(seq 1 600); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.1; done

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
# Warm the ordinary list once (page cache, the classifier's memo).
taskset -c 1 "$LT" run --addr "127.0.0.1:$PORT" --requests "$WORK/codes.tsv" --rate "$RATE" --duration 3s --json >/dev/null

measure() { # label [flood list]
  local label=$1 list=${2:-}
  local flood_pid=
  if [ -n "$list" ]; then
    taskset -c 1 "$LT" run --addr "127.0.0.1:$PORT" --requests "$WORK/$list.tsv" --rate "$FLOOD_RATE" \
      --connections 8 --duration "$DURATION" --user-agent "$DESKTOP" --answer-status 200 \
      --label "flood: $label" --json | tail -n 1 >"$WORK/flood.json" &
    flood_pid=$!
  fi
  taskset -c 1 "$LT" run --addr "127.0.0.1:$PORT" --requests "$WORK/codes.tsv" --rate "$RATE" \
    --duration "$DURATION" --server-pid "$PID_QR" --label "scans with: $label" --json | tail -n 1 >>"$RESULTS"
  if [ -n "$flood_pid" ]; then
    wait "$flood_pid"
    cat "$WORK/flood.json" >>"$RESULTS"
  fi
  tail -n 1 "$RESULTS" >&2
}

log "ordinary scans at $RATE/s, alone and beside $FLOOD_RATE/s of each flood, $DURATION each"
for round in 1 2; do
  measure "nothing (round $round)"
  measure "one code, no query (round $round)" code-plain
  measure "one code, 2 KB unique queries (round $round)" code-long
  measure "one rule, 2 KB unique queries (round $round)" rule-long
  measure "one rule, short unique queries (round $round)" rule-short
done
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$PID_QR/status")
busy=$(curl -s "http://127.0.0.1:$((PORT + 2))/metrics" | awk '/^qrlaunch_page_qr_busy_total/ {print $2}')

log "results"
python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$rss" "$busy" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}; qrlaunch RSS at the end {int(sys.argv[4]) // 1024} MiB")
print(f"{'run':<58} {'req/s':>7} {'p50 µs':>7} {'p99 µs':>7} {'p99.9 µs':>8} {'max µs':>7} {'errors':>6} {'server cpu':>10} {'late µs':>8}")
for r in rows:
    errors = sum(r.get("errors", {}).values())
    cpu = r.get("server_cpu_percent")
    cpu = f"{cpu:.0f}%" if cpu is not None else ""
    late = r.get("pacer_lag_max_us")
    late = f"{late:.0f}" if late is not None else ""
    print(f"{r['label']:<58} {r['rps']:>7.0f} {r['p50_us']:>7.0f} {r['p99_us']:>7.0f} {r['p999_us']:>8.0f} "
          f"{r['max_us']:>7.0f} {errors:>6} {cpu:>10} {late:>8}")
print("late µs: the generator's own lateness (max); server cpu: qrlaunch's share of its core during the ordinary run")
print(f"pages sent without their QR code (past --page-qr-cpu): {sys.argv[5]}")
PY

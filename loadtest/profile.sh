#!/usr/bin/env bash
# Where qrlaunch's time goes under load: the server pinned to one core,
# driven in closed loop by our generator on the other, on the same table
# and codes list as compare-nginx.sh. Loopback only; bounded; everything
# started is stopped.
#
#   bash loadtest/profile.sh
#
# 1. `perf record -e cpu-clock` (a software clock, so it works on VMs that
#    expose no hardware counters) of the server process: user space and
#    kernel together, flat, by symbol and by DSO.
# 2. When `perf stat -e instructions true` does not work (no hardware
#    counters), also valgrind's callgrind: instructions per function of the
#    server's user space only, collected while it serves (not while it loads).
#
# Knobs (environment): CODES (1000000), RULES (10000), DURATION (10s),
# CALLGRIND_DURATION (20s), CONNECTIONS (32), SERVER_CORE (0), CLIENT_CORE (1),
# TOP (25), CALLGRIND (auto|yes|no), KEEP (unset).
set -euo pipefail
cd "$(dirname "$0")/.."

CODES=${CODES:-1000000}
RULES=${RULES:-10000}
DURATION=${DURATION:-10s}
CALLGRIND_DURATION=${CALLGRIND_DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
TOP=${TOP:-25}
CALLGRIND=${CALLGRIND:-auto}
QR_PORT=${QR_PORT:-18580}
ADMIN_PORT=${ADMIN_PORT:-18581}

log() { printf '\n== %s ==\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 && return
  log "installing $2"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need perf linux-perf
need taskset util-linux

WORK=$(mktemp -d /tmp/qrlaunch-profile.XXXXXX)
QR_PID=
cleanup() {
  if [ -n "$QR_PID" ]; then
    kill "$QR_PID" 2>/dev/null || true
    sleep 0.5
    kill -9 "$QR_PID" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log "building (release)"
cargo build --release --bins --quiet
QR=target/release/qrlaunch
LT=target/release/qrlaunch-loadtest
$LT gen-table --codes "$CODES" --rules "$RULES" --out "$WORK/table.ndjson"
$LT gen-requests --codes "$CODES" --rules "$RULES" --known 98 --legacy 0 --unknown 2 --count 100000 --out "$WORK/codes.tsv"

wait_ready() {
  for _ in $(seq 1 3000); do
    curl -sf -o /dev/null "http://127.0.0.1:$QR_PORT/readyz" && return 0
    kill -0 "$QR_PID" 2>/dev/null || { echo "qrlaunch exited" >&2; return 1; }
    sleep 0.2
  done
  echo "qrlaunch not ready" >&2
  return 1
}

load() { # duration label
  taskset -c "$CLIENT_CORE" "$LT" run --addr "127.0.0.1:$QR_PORT" --connections "$CONNECTIONS" --duration "$1" \
    --requests "$WORK/codes.tsv" --label "$2" --server-pid "$QR_PID" --watch-cores "$SERVER_CORE,$CLIENT_CORE" | grep -v "^{" >&2
}

log "perf (cpu-clock) of qrlaunch --threads 1 under closed-loop load"
taskset -c "$SERVER_CORE" "$QR" --threads 1 --listen "127.0.0.1:$QR_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --data "$WORK/data" --table "$WORK/table.ndjson" --log warn 2>>"$WORK/qrlaunch.log" &
QR_PID=$!
wait_ready
secs=${DURATION%s}
( sleep 1; timeout $((secs + 10)) perf record -q -e cpu-clock -F 4999 -p "$QR_PID" -o "$WORK/perf.data" -- sleep $((secs - 2)) \
  2>"$WORK/perf-record.log" ) &
PERF_JOB=$!
load "$DURATION" "qrlaunch (perf attached)"
wait "$PERF_JOB" || true
echo >&2
echo "perf: share of the server's samples by DSO (kernel = the TCP/loopback path and syscalls)"
report() { # perf report arguments; `|| true`: head closing the pipe early is fine
  perf report -i "$WORK/perf.data" --no-children --stdio "$@" 2>/dev/null | grep -E '^ +[0-9]' | sed -E 's/[ -]+$//' \
    | head -n "$TOP" || true
}
report --sort dso
echo
echo "perf: top $TOP symbols (user and kernel)"
report --sort dso,symbol
echo
echo "perf: top $TOP user-space symbols of qrlaunch"
report --dsos qrlaunch --sort symbol
kill "$QR_PID" 2>/dev/null || true
wait "$QR_PID" 2>/dev/null || true
QR_PID=

if [ "$CALLGRIND" = auto ]; then
  if perf stat -e instructions true 2>&1 | grep -q 'not supported'; then CALLGRIND=yes; else CALLGRIND=no; fi
fi
if [ "$CALLGRIND" = yes ]; then
  need valgrind valgrind
  log "callgrind of qrlaunch --threads 1 (instrumented only while serving; the store is the one loaded above)"
  taskset -c "$SERVER_CORE" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out" \
    "$QR" --threads 1 --listen "127.0.0.1:$QR_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --data "$WORK/data" --log warn 2>>"$WORK/callgrind.log" &
  QR_PID=$!
  wait_ready
  callgrind_control -i on "$QR_PID" >/dev/null
  load "$CALLGRIND_DURATION" "qrlaunch (under callgrind: slow, only the profile counts)"
  callgrind_control -d "$QR_PID" >/dev/null
  sleep 2
  kill "$QR_PID" 2>/dev/null || true
  wait "$QR_PID" 2>/dev/null || true
  QR_PID=
  # The dump taken while serving has the most instructions (the one at exit holds only the shutdown).
  out=$(for f in "$WORK"/callgrind.out*; do echo "$(sed -n 's/^summary: //p' "$f" | head -n 1) $f"; done \
    | sort -n | tail -n 1 | cut -d' ' -f2)
  echo
  echo "callgrind: $(sed -n 's/^summary: //p' "$out" | head -n 1) instructions while serving (divide by the requests above)"
  agg=$(cat <<'PY'
import collections, re, sys
# callgrind_annotate lists "N (P%)  FILE:FUNCTION [OBJECT]" per source file, so a
# function with inlined code appears several times: exclusive costs are summed,
# inclusive ones overlap (the largest is kept).
mode, top = sys.argv[1], int(sys.argv[2])
total, agg = None, collections.Counter()
for line in sys.stdin:
    m = re.match(r"^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$", line.rstrip())
    if not m:
        continue
    n, rest = int(m.group(1).replace(",", "")), m.group(2)
    if rest == "PROGRAM TOTALS":
        total = n
        continue
    if ":" not in rest:
        continue
    fn = re.sub(r" \[[^\]]*\]$", "", rest).split(":", 1)[1]
    agg[fn] = agg[fn] + n if mode == "self" else max(agg[fn], n)
skip = re.compile(r"drop_in_place|backtrace|libc_start|::main$|FnOnce|run_task|raw::poll|block_on|scheduler|LocalKey|coop")
shown = 0
for fn, n in agg.most_common():
    if mode == "incl" and skip.search(fn):
        continue
    print(f"{n:>14,} {100 * n / total:5.1f}%  {fn[:140]}")
    shown += 1
    if shown == top:
        break
PY
)
  echo
  echo "callgrind: top $TOP functions by instructions (exclusive), user space only"
  callgrind_annotate --threshold=100 --tree=none --auto=no "$out" 2>/dev/null | python3 -c "$agg" self "$TOP"
  echo
  echo "callgrind: top $TOP functions by instructions (inclusive; runtime plumbing left out)"
  callgrind_annotate --inclusive=yes --threshold=100 --tree=none --auto=no "$out" 2>/dev/null | python3 -c "$agg" incl "$TOP"
fi

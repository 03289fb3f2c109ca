#!/usr/bin/env bash
# Time to ready and memory of a first start that seeds a store from
# --table, and of a restart on that store, for one or more builds side by
# side (alternating, round by round), with the medians.
#
#   bash loadtest/first-start.sh                   # this tree's release build
#   bash loadtest/first-start.sh OLD_BIN NEW_BIN   # two builds, alternately
#
# (LOADTEST names the qrlaunch-loadtest binary that makes the table; it is
# built when missing.)
#
# Knobs (environment): CODES (1000000), RULES (10000), ROUNDS (3), PIN (a
# CPU list for taskset, e.g. 0, to pin the node to one core; empty: not
# pinned). The table comes from `qrlaunch-loadtest gen-table --seed 7`.
# Every node listens on loopback ports the kernel picks, in a temporary
# directory removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

CODES=${CODES:-1000000}
RULES=${RULES:-10000}
ROUNDS=${ROUNDS:-3}
PIN=${PIN:-}

source loadtest/node.sh
node_bins "$@"
set -- "${BINS[@]}"

WORK=$(mktemp -d /tmp/qrlaunch-first-start.XXXXXX)
NODE_PID=
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

"$LT" gen-table --codes "$CODES" --rules "$RULES" --seed 7 --out "$WORK/table.ndjson" >/dev/null

# Starts BIN on DATA (with ARGS), waits for /readyz 200 (at most 120 s),
# and sets SECONDS_TO_READY and RSS_KIB; the node is stopped with SIGTERM
# after. Runs in this shell, so that the trap can stop a node it started.
timed_start() {
  local bin=$1 data=$2
  shift 2
  local started ended rss
  started=$(date +%s.%N)
  node_start "$PIN" "$bin" --data "$data" "$@"
  node_wait_ready
  ended=$(date +%s.%N)
  # Memory once the start's work has settled.
  sleep 1
  rss=$(awk '/VmRSS/{print $2}' "/proc/$NODE_PID/status")
  node_stop
  SECONDS_TO_READY=$(awk -v a="$started" -v b="$ended" 'BEGIN {print b - a}')
  RSS_KIB=$rss
}

median() { sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

printf 'machine: %s cores, %s; %s codes, %s rules; pinned: %s\n' "$(nproc)" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$CODES" "$RULES" "${PIN:-no}"
printf '%-44s %5s %12s %10s %12s %10s\n' binary round "seed s" "seed MiB" "restart s" "rest. MiB"
declare -A seeds restarts
for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    data="$WORK/data"
    rm -rf "$data"
    timed_start "$bin" "$data" --table "$WORK/table.ndjson"
    seed=$SECONDS_TO_READY seed_rss=$RSS_KIB
    timed_start "$bin" "$data"
    restart=$SECONDS_TO_READY restart_rss=$RSS_KIB
    seeds[$bin]+="$seed "
    restarts[$bin]+="$restart "
    printf '%-44s %5s %12.2f %10.1f %12.2f %10.1f\n' "$("$bin" --version | cut -d' ' -f2-)" "$round" \
      "$seed" "$(awk -v k="$seed_rss" 'BEGIN {print k / 1024}')" "$restart" "$(awk -v k="$restart_rss" 'BEGIN {print k / 1024}')"
  done
done
for bin in "$@"; do
  printf 'median %-37s %5s %12.2f %10s %12.2f\n' "$("$bin" --version | cut -d' ' -f2-)" "" \
    "$(tr ' ' '\n' <<<"${seeds[$bin]}" | grep . | median)" "" \
    "$(tr ' ' '\n' <<<"${restarts[$bin]}" | grep . | median)"
done

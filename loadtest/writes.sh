#!/usr/bin/env bash
# Single admin writes beside scans on a one-core node, for one or more
# builds side by side (alternating, round by round): what the writes cost
# the node's control thread (its CPU, which a `--threads 1` node's scans
# share their core with), the write rate the node held, how soon each
# write showed, and the scans' latency meanwhile.
#
#   bash loadtest/writes.sh                   # this tree's release build
#   bash loadtest/writes.sh OLD_BIN NEW_BIN   # two builds, alternately
#
# Each round starts the node on core NODE_CPU (`--threads 1`) seeding a fresh
# SQLite store with CODES codes and RULES rules; once it is ready, scans
# run on core LOAD_CPU in open loop at RATE/s for DURATION seconds (latency from
# each request's due time), and 2 s in, `qrlaunch-loadtest propagation`
# (also on LOAD_CPU) makes WRITES single code writes at WRITE_RATE/s through
# the admin API. WRITES past COMPACT_AT (4,096) also make the node fold its
# overlay into a new base once.
#
# The scan generator runs, for root, in the real-time class (`chrt -f 20`;
# GEN_SCHED=fifo, or nice for nice -19, none for neither), as in
# loadtest/stall.sh: the propagation tool's writes share its core.
#
# SCHED_RECORD=1 also records the scheduler during each scan run (`perf
# sched record -a` on LOAD_CPU) and adds, by loadtest/sched-waits.py, the
# node's scan thread's scheduling delay (from its wake-up to running) and
# how much of its waits over 1 ms the control runtime (the main thread
# and its blocking pool, `qrlaunch-control`) ran through, and its longest
# wait while its core ran nothing else (the virtual machine's CPU itself
# not running: loadtest/sched-waits.py); the recording
# shares the generator's core and makes it late, so leave it off for the
# latency figures.
#
# Knobs (environment): CODES (1000000), RULES (10000), ROUNDS (3), RATE
# (20000), DURATION (12), WRITES (4200), WRITE_RATE (1000), NODE_CPU (0),
# LOAD_CPU (1), GEN_SCHED (fifo for root, else none), SCHED_RECORD
# (unset). LOADTEST names
# the qrlaunch-loadtest binary (built when missing). Every node listens on
# loopback ports the kernel picks, in a temporary directory removed at the
# end.
set -euo pipefail
cd "$(dirname "$0")/.."

CODES=${CODES:-1000000}
RULES=${RULES:-10000}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-20000}
DURATION=${DURATION:-12}
WRITES=${WRITES:-4200}
WRITE_RATE=${WRITE_RATE:-1000}
NODE_CPU=${NODE_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
GEN_SCHED=${GEN_SCHED:-fifo}
SCHED_RECORD=${SCHED_RECORD:-}
source loadtest/lib.sh
sched_record_check
gen_sched

source loadtest/node.sh
node_bins "$@"
set -- "${BINS[@]}"

WORK=$(mktemp -d /tmp/qrlaunch-writes.XXXXXX)
NODE_PID=
WORK_PID=
cleanup() {
  [ -n "$WORK_PID" ] && kill "$WORK_PID" 2>/dev/null && wait "$WORK_PID" 2>/dev/null
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

"$LT" gen-table --codes "$CODES" --rules "$RULES" --out "$WORK/table.ndjson" >/dev/null
"$LT" gen-requests --codes "$CODES" --rules "$RULES" --count 100000 --known 100 --legacy 0 --unknown 0 \
  --out "$WORK/scans.tsv" >/dev/null
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$WORK/token"
chmod 600 "$WORK/token"

# CPU time (clock ticks, user and system) of a thread of the node.
ticks() { awk '{print $14 + $15}' "/proc/$NODE_PID/task/$1/stat"; }

# round BIN ROUND: one measured round; appends a JSON line to results.
round() {
  local bin=$1 n=$2 data="$WORK/data" scan admin before_ctl before_all after_ctl after_all
  rm -rf "$data"
  node_start "$NODE_CPU" "$bin" --threads 1 --data "$data" --admin-token-file "$WORK/token" --log warn \
    --table "$WORK/table.ndjson"
  node_wait_ready
  scan=$NODE_SCAN admin=$NODE_ADMIN
  # Let the start's work settle.
  sleep 3
  before_ctl=$(ticks "$NODE_PID")
  before_all=$(awk '{print $14 + $15}' "/proc/$NODE_PID/stat")
  (
    sleep 2
    taskset -c "$LOAD_CPU" "$LT" propagation --admin "${admin#http://}" --token-file "$WORK/token" \
      --node "${scan#http://}" --rate "$WRITE_RATE" --writes "$WRITES" --prefix "w$n" --json |
      tail -n 1 >"$WORK/writes.json"
  ) &
  WORK_PID=$!
  local record=
  if [ -n "$SCHED_RECORD" ]; then
    taskset -c "$LOAD_CPU" perf sched record -a -m 16M -o "$WORK/sched.data" -- sleep "$DURATION" \
      >/dev/null 2>&1 &
    record=$!
  fi
  "${GEN[@]}" taskset -c "$LOAD_CPU" "$LT" run --addr "${scan#http://}" --connections 32 --duration "${DURATION}s" \
    --requests "$WORK/scans.tsv" --rate "$RATE" --label "$bin" --server-pid "$NODE_PID" --json |
    tail -n 1 >"$WORK/scans.json"
  wait "$WORK_PID"
  WORK_PID=
  after_ctl=$(ticks "$NODE_PID")
  after_all=$(awk '{print $14 + $15}' "/proc/$NODE_PID/stat")
  echo '{}' >"$WORK/sched.json"
  if [ -n "$record" ]; then
    wait "$record" || { echo "perf sched record failed (is perf allowed here? perf_event_paranoid)" >&2; exit 1; }
    python3 loadtest/sched-waits.py "$WORK/sched.data" "$NODE_PID" "$bin" >"$WORK/sched.json"
    rm -f "$WORK/sched.data"
  fi
  python3 - "$bin" "$n" "$((after_ctl - before_ctl))" "$((after_all - before_all))" "$(getconf CLK_TCK)" \
    "$WORK/scans.json" "$WORK/writes.json" "$WORK/sched.json" "$(cat "/proc/$NODE_PID/comm")" \
    >>"$WORK/results.jsonl" <<'PY'
import json, sys
bin, n, ctl, all_, hz, scans, writes, sched, main = sys.argv[1:]
s = json.load(open(scans))
w = json.load(open(writes))
r = json.load(open(sched))
recorded = {
    "sched_delay_p99_ms": r["sched_delay_p99_ms"], "sched_delay_p999_ms": r["sched_delay_p999_ms"],
    "waits_over_1ms": r["waits_over_1ms"],
    "sched_delay_max_ms": r["sched_delay_max_ms"],
    "longest_wait_on_idle_core_ms": r["longest_wait_on_idle_core_ms"],
    # The main thread and the control runtime's blocking pool.
    "behind_control_ms": sum(ms for task, ms in r["ran_meanwhile_ms"].items()
                             if task in (main, "qrlaunch-contro")),
} if r else {}
print(json.dumps({
    **recorded,
    "bin": bin, "round": int(n),
    "control_cpu_s": int(ctl) / int(hz), "process_cpu_s": int(all_) / int(hz),
    "write_rate": w["achieved_rate"], "writes": w["changes"], "lost": w["lost"],
    "show_p50_ms": w["p50_ms"], "show_p99_ms": w["p99_ms"],
    "scan_p99_us": s["p99_us"], "scan_p999_us": s["p999_us"], "scan_max_us": s["max_us"],
    "node_p99_us": s.get("service_p99_us") or 0, "node_max_us": s.get("service_max_us") or 0,
    "generator_late_us": s.get("pacer_lag_max_us") or 0,
}))
PY
  tail -n 1 "$WORK/results.jsonl" >&2
  node_stop
}

for n in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    round "$bin" "$n"
  done
done

python3 - "$WORK/results.jsonl" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}; medians over rounds (range)")
keys = [("control_cpu_s", "control thread CPU, s"), ("write_rate", "writes/s held"),
        ("show_p50_ms", "write shows, p50 ms"), ("show_p99_ms", "write shows, p99 ms"),
        ("scan_p99_us", "scans p99 µs"), ("scan_p999_us", "scans p99.9 µs"), ("scan_max_us", "scans max µs"),
        ("node_p99_us", "node time p99 µs"), ("node_max_us", "node time max µs"),
        ("generator_late_us", "generator late, max µs")]
if "sched_delay_p99_ms" in rows[0]:
    keys += [("sched_delay_p99_ms", "scan thread sched. delay p99 ms"),
             ("sched_delay_p999_ms", "scan thread sched. delay p99.9 ms"),
             ("sched_delay_max_ms", "scan thread sched. delay max ms"),
             ("waits_over_1ms", "its waits over 1 ms"),
             ("behind_control_ms", "control runtime ran in them, ms"),
             ("longest_wait_on_idle_core_ms", "longest on an idle core (the VM's), ms")]
for bin in dict.fromkeys(r["bin"] for r in rows):
    mine = [r for r in rows if r["bin"] == bin]
    print(f"{bin} ({len(mine)} rounds, {mine[0]['writes']} writes each, lost {sum(r['lost'] for r in mine)}):")
    for key, label in keys:
        values = [r[key] for r in mine]
        print(f"  {label:<34} {statistics.median(values):>10.2f}  ({min(values):.2f}–{max(values):.2f})")
print("scans: latency from each request's due time; node time: from the moment it was sent")
PY

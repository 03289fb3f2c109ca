#!/usr/bin/env bash
# Scans while a node works: the millisecond must hold while a node rebuilds,
# imports, flushes and compacts. One run measures, against each node's
# idle scans, the scans during each kind of background work, plus memory
# and time to ready, and prints one table.
#
#   bash loadtest/stall.sh                      # the shipped build (jemalloc)
#   FEATURES= bash loadtest/stall.sh            # the system allocator
#
# Nodes: A (PostgreSQL, core 1) takes imports for the fleet; B (PostgreSQL,
# --threads 1, core 0) follows; S (SQLite, --threads 1, core 0) is a node
# on its own store. PostgreSQL is pinned to core 1, the load generator to
# core 1: core 0 is B's or S's alone. The generator is the instrument:
# for root it runs in the real-time class (SCHED_FIFO, `chrt -f`,
# GEN_SCHED=fifo) so that PostgreSQL and node A, at 100% of its core
# during B's rebuild, never make it late (at nice -19, GEN_SCHED=nice, they
# still did, by up to 30 ms); it sleeps between requests, and the kernel
# keeps a share of the core for the others. Anyone else's runs as usual.
# Scans: open loop at RATE/s for DURATION seconds over 100,000 requests for
# known codes, latency from each request's due time (the generator's own
# lateness is shown beside it); the work starts 2 s into the run.
#
#   idle (B)                    B alone
#   rebuild (B)                 a 1,000,000-line import through A: B takes
#                               it in by a rebuild from a snapshot (the run
#                               starts when B starts it and lasts three
#                               times as long, to hold the snapshot, the
#                               build and the publish; the table says when
#                               B's table had it, or that it did not within
#                               the run)
#   idle (S)                    S alone
#   stats flush (S)             a flush of 1,000,000 changed counters (a
#                               run twice as long, starting 2 s before the
#                               flush is due; the table says so when the
#                               flush did not end within it)
#   SIGHUP (S)                  kill -HUP: a rebuild from the store
#   compaction alone (S)        4,090 single writes made before the run,
#                               100 more at 100/s in it: the sixth starts
#                               the fold of the overlay into a new base of
#                               1,000,000 codes
#   compaction (S)              4,200 single writes at 1,000/s: the node
#                               takes the writes and folds the overlay
#                               into a new base of 1,000,000 codes
#   import (S)                  a 1,000,000-line import into S's store
#                               (a run twice as long, to hold all of it)
#   idle (nginx)                the machine's floor: nginx (one worker, on
#                               core 0 alone) answering the same requests
#                               from a `map` of the same 1,000,000 codes,
#                               measured by the same generator at the same
#                               rate (nginx-light is installed for root
#                               when missing; otherwise the run is skipped,
#                               and the table says so)
#
# Memory and time: S's first start seeding 1,000,000 codes from --table
# (time to ready, RSS), its RSS after each of ten SIGHUP rebuilds, and a
# restart on the same store (time to ready, RSS).
#
# Knobs (environment): RATE (20000), DURATION (20), FEATURES (cargo
# features of the build, default features off: jemalloc, mimalloc, or
# empty for the system allocator), PG_PORT (15532), FIRST_PORT
# (18480), GEN_SCHED (fifo for root, else none; nice: at nice -19),
# SCHED_RECORD (1: `perf sched record` each run and say, beside it, how
# long the node's scan thread waited for its core and what ran meanwhile,
# loadtest/sched-waits.py; the recording itself costs the node some
# latency, so leave it off for the figures), RUNS (all; B: only B's runs,
# S: only S's (with the floor); floor: only nginx's).
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET_LIB_ONLY=1 source deploy/fleet.sh
source loadtest/lib.sh

RATE=${RATE:-20000}
DURATION=${DURATION:-20}
FEATURES=${FEATURES-jemalloc}
FIRST_PORT=${FIRST_PORT:-18480}
GEN_SCHED=${GEN_SCHED:-fifo}
SCHED_RECORD=${SCHED_RECORD:-}
RUNS=${RUNS:-all}
sched_record_check
case $RUNS in
  all | B | S | floor) ;;
  *) echo "RUNS must be all, B, S or floor, not $RUNS" >&2; exit 2 ;;
esac
if [ "$RUNS" != B ] && ! command -v nginx >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing nginx-light for the floor" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null ||
    echo "could not install nginx-light: no floor" >&2
fi
# S's first flush: after its idle run and a pass over every code.
FLUSH_AFTER=$((DURATION * 2 + 10))
gen_sched
export PG_PORT=${PG_PORT:-15532}
A=$FIRST_PORT
B=$((FIRST_PORT + 10))
S=$((FIRST_PORT + 20))
FLEET_LOG=warn
export FLEET_PG_CORES=1

log() { printf '\n== %s ==\n' "$*" >&2; }

log "building (release${FEATURES:+, features $FEATURES})"
# Each allocator build keeps its own target directory, so comparing them
# rebuilds nothing twice.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}${FEATURES:+-$FEATURES}
cargo build --release --bins --quiet --no-default-features ${FEATURES:+--features "$FEATURES"}
export QRLAUNCH=$CARGO_TARGET_DIR/release/qrlaunch
LT=$CARGO_TARGET_DIR/release/qrlaunch-loadtest

S_PID=
NGINX_PID=
cleanup() {
  [ -n "$S_PID" ] && kill "$S_PID" 2>/dev/null && wait "$S_PID" 2>/dev/null
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
  fleet_stop
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fleet_init
RESULTS=$FLEET_DIR/results.jsonl
: >"$RESULTS"
TOKEN_FILE=$FLEET_DIR/admin-token

# The imports' file (seed 7) holds the same codes shifted by 35 places
# (`workload::code`): importing it rewrites a million rows, nearly all of
# them codes the store has, so the store keeps about a million codes.
log "workload: 1,000,000 codes and 10,000 rules; a second 1,000,000 lines for imports"
$LT gen-table --codes 1000000 --rules 10000 --out "$FLEET_DIR/table.ndjson"
$LT gen-table --codes 1000000 --rules 0 --seed 7 --out "$FLEET_DIR/more.ndjson"
$LT gen-requests --codes 1000000 --rules 10000 --count 100000 --known 100 --legacy 0 --unknown 0 \
  --out "$FLEET_DIR/scans.tsv"
# Every code once: a pass over it changes 1,000,000 counters.
python3 - "$FLEET_DIR/table.ndjson" "$FLEET_DIR/every.tsv" <<'PY'
import json, sys
with open(sys.argv[2], "w") as out:
    for line in open(sys.argv[1]):
        code = json.loads(line).get("code")
        if code:
            out.write(f"go.example.com\t/{code}\t302\n")
PY

note() { echo "$1" >>"$RESULTS"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
metric() { # port name -> value (0 when absent)
  curl -s "http://127.0.0.1:$(($1 + 2))/metrics" | awk -v n="$2" '$1 == n {v = $2} END {print v + 0}'
}
position() { # port
  curl -s -D - -o /dev/null "http://127.0.0.1:$1/readyz" | awk 'tolower($1) == "qrlaunch-position:" {print $2+0}'
}
caught_up() { # port position
  for _ in $(seq 1 1200); do
    [ "$(position "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  echo "node on $1 did not catch up with $2" >&2
  return 1
}
import() { # admin-port file
  curl -sS -f -o "$FLEET_DIR/import.json" -H "Authorization: Bearer $(cat "$TOKEN_FILE")" \
    -H 'Content-Type: application/x-ndjson' -H 'Expect:' -X POST -T "$2" \
    "http://127.0.0.1:$1/admin/v1/import" || {
    echo "import of $2 failed: $(cat "$FLEET_DIR/import.json" 2>/dev/null)" >&2
    exit 1
  }
}
# watch_for FILE SECONDS CHECK...: in the background, on core 1, polls
# CHECK every 0.1 s for about SECONDS and writes to FILE the second (from
# now) at which it first held; sets $watcher.
watch_for() {
  local file=$1 seconds=$2
  shift 2
  (
    t0=$SECONDS
    for _ in $(seq 1 $((seconds * 10))); do
      if "$@"; then
        echo $((SECONDS - t0)) >"$file"
        exit 0
      fi
      sleep 0.1
    done
  ) &
  watcher=$!
  taskset -cp 1 "$watcher" >/dev/null
}
# scans LABEL PORT PID [WORK...]: the measured run; WORK (a command) starts
# 2 s in, and the run waits for it.
scans() {
  local label=$1 port=$2 pid=$3
  shift 3
  local work=
  if (($#)); then
    (
      sleep 2
      "$@"
    ) &
    work=$!
  fi
  local record=
  if [ -n "$SCHED_RECORD" ]; then
    # On the generator's core, not the node's.
    taskset -c 1 perf sched record -a -m 16M -o "$FLEET_DIR/sched.data" -- sleep "$DURATION" >/dev/null 2>&1 &
    record=$!
  fi
  "${GEN[@]}" taskset -c 1 "$LT" run --addr "127.0.0.1:$port" --connections 32 --duration "${DURATION}s" \
    --requests "$FLEET_DIR/scans.tsv" --rate "$RATE" --label "$label" --server-pid "$pid" --watch-cores 0,1 \
    --json | tail -n 1 >>"$RESULTS"
  [ -n "$work" ] && wait "$work"
  tail -n 1 "$RESULTS" >&2
  if [ -n "$record" ]; then
    wait "$record" || { echo "perf sched record failed (is perf allowed here? perf_event_paranoid)" >&2; exit 1; }
    python3 loadtest/sched-waits.py "$FLEET_DIR/sched.data" "$pid" "$label" >>"$RESULTS"
    rm -f "$FLEET_DIR/sched.data"
    tail -n 1 "$RESULTS" >&2
  fi
}

if [ "$RUNS" = all ] || [ "$RUNS" = B ]; then
  log "the fleet: A seeds PostgreSQL with the table, B follows"
  FLEET_CORES=1 fleet_node_start A "$A" --table "$FLEET_DIR/table.ndjson"
  FLEET_CORES=0 fleet_node_start B "$B" --threads 1
  PID_B=${FLEET_PIDS[1]}
  caught_up "$B" "$(position "$A")"

  scans "idle (B)" "$B" "$PID_B"
  # The import through A takes tens of seconds before it commits; B's work
  # starts when it sees the commit, so the measured run starts then.
  import $((A + 1)) "$FLEET_DIR/more.ndjson" &
  IMPORTER=$!
  for _ in $(seq 1 3000); do
    grep -q "resyncing the table" "$FLEET_DIR/B.log" && break
    sleep 0.02
  done
  grep -q "resyncing the table" "$FLEET_DIR/B.log" || { echo "B never started its rebuild" >&2; exit 1; }
  # B's table has the import once its position reaches the store's position
  # B saw when it started the rebuild.
  head=$(metric "$B" qrlaunch_store_position)
  rebuilt() { [ "$(metric "$B" qrlaunch_table_position | cut -d. -f1)" -ge "${head%.*}" ]; }
  watch_for "$FLEET_DIR/rebuilt" $((DURATION * 3)) rebuilt
  DURATION=$((DURATION * 3)) scans "rebuild after a 1M import through A (B)" "$B" "$PID_B"
  wait "$watcher"
  if [ -s "$FLEET_DIR/rebuilt" ] && (($(cat "$FLEET_DIR/rebuilt") < DURATION * 3)); then
    note "{\"label\": \"B's table had the import at second $(cat "$FLEET_DIR/rebuilt") of that run\"}"
  else
    note '{"label": "WARNING: B had not rebuilt its table by the end of its run, which measured only part of the rebuild"}'
  fi
  tail -n 1 "$RESULTS" >&2
  wait "$IMPORTER"
  kill "$PID_B" "${FLEET_PIDS[0]}"
  wait "$PID_B" "${FLEET_PIDS[0]}" 2>/dev/null || true
  FLEET_PIDS=()
fi

if [ "$RUNS" != B ]; then
  # The floor: what this machine, this generator and this rate give a
  # server that does nothing but look a code up in a map and answer.
  if command -v nginx >/dev/null; then
    log "the floor: nginx (one worker, core 0) on the same codes"
    $LT gen-nginx-map --codes 1000000 --out "$FLEET_DIR/map.conf"
    mkdir -p "$FLEET_DIR/nginx"
    cat >"$FLEET_DIR/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $FLEET_DIR/nginx/nginx.pid;
error_log $FLEET_DIR/nginx/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path $FLEET_DIR/nginx/body;
    proxy_temp_path $FLEET_DIR/nginx/proxy;
$(nginx_map_settings "$FLEET_DIR/map.conf")
    server {
        listen 127.0.0.1:$((FIRST_PORT + 30));
$(nginx_map_answer)
    }
}
NGINX
    taskset -c 0 nginx -c "$FLEET_DIR/nginx.conf" -p "$FLEET_DIR/nginx" &
    NGINX_PID=$!
    # Loading the map of a million codes takes a few seconds.
    up=
    for _ in $(seq 1 600); do
      if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((FIRST_PORT + 30))/")" = 404 ]; then
        up=1
        break
      fi
      kill -0 "$NGINX_PID" 2>/dev/null || break
      sleep 0.1
    done
    worker=$(pgrep -P "$NGINX_PID" | head -n 1 || true)
    if [ -z "$up" ] || [ -z "$worker" ]; then
      echo "nginx did not start answering; its log:" >&2
      cat "$FLEET_DIR/nginx/error.log" >&2 || true
      exit 1
    fi
    # No scheduler record: sched-waits.py reads a qrlaunch scan thread.
    SCHED_RECORD= scans "idle (nginx, the floor)" $((FIRST_PORT + 30)) "$worker"
    kill "$NGINX_PID"
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
  else
    note '{"label": "no floor: nginx is not installed (Debian: nginx-light)"}'
  fi
fi

if [ "$RUNS" = all ] || [ "$RUNS" = S ]; then
  start_s() { # [extra flags]: starts S on its SQLite store; sets S_PID and SECS (to ready)
    local t0 t1
    t0=$(date +%s.%N)
    taskset -c 0 "$QRLAUNCH" --threads 1 --data "$FLEET_DIR/S" --listen "127.0.0.1:$S" \
      --admin-listen "127.0.0.1:$((S + 1))" --metrics-listen "127.0.0.1:$((S + 2))" \
      --admin-token-file "$TOKEN_FILE" --log warn --stats-flush "${FLUSH_AFTER}s" "$@" \
      >"$FLEET_DIR/S.out" 2>"$FLEET_DIR/S.log" &
    S_PID=$!
    fleet_wait_ready "http://127.0.0.1:$S/readyz" S >/dev/null
    t1=$(date +%s.%N)
    SECS=$(python3 -c "print(round($t1 - $t0, 2))")
  }

  log "S: the first start seeds 1,000,000 codes from --table"
  start_s --table "$FLEET_DIR/table.ndjson"
  secs=$SECS
  # The flusher starts counting FLUSH_AFTER just before the node is ready.
  flush_due=$(($(date +%s) + FLUSH_AFTER))
  sleep 2
  note "{\"label\": \"first start seeding 1M codes, to ready\", \"seconds\": $secs, \"rss_kib\": $(rss_kib "$S_PID")}"
  tail -n 1 "$RESULTS" >&2

  # Idle first: the flushes after the first (every FLUSH_AFTER seconds)
  # fall into the runs of work that follow it.
  scans "idle (S)" "$S" "$S_PID"

  log "S: a stats flush of 1,000,000 changed counters (the first flush, $FLUSH_AFTER s after start)"
  taskset -c 1 "$LT" run --addr "127.0.0.1:$S" --connections 32 --duration 60s --max-requests 1000000 \
    --requests "$FLEET_DIR/every.tsv" --json >/dev/null
  flushed_before=$(metric "$S" qrlaunch_stats_rows_flushed_total)
  # The run starts 2 s before the flush is due, as the other runs start 2 s
  # before their work, and lasts twice as long as they do: the flush's rows
  # are counted only once it has written them all, so a run that ended
  # before (a million upserts in the idle class, behind the scans) measured
  # no flush at all.
  wait_for=$((flush_due - 2 - $(date +%s)))
  if ((wait_for < 0)); then
    echo "the pass over every code ended $((-wait_for)) s after the run should have started" >&2
    exit 1
  fi
  sleep "$wait_for"
  flush_ended() { [ "$(metric "$S" qrlaunch_stats_rows_flushed_total)" != "$flushed_before" ]; }
  watch_for "$FLEET_DIR/flush-ended" $((DURATION * 2)) flush_ended
  DURATION=$((DURATION * 2)) scans "stats flush of 1M counters (S)" "$S" "$S_PID"
  wait "$watcher"
  flushed=$(($(metric "$S" qrlaunch_stats_rows_flushed_total | cut -d. -f1) - ${flushed_before%.*}))
  ended=$(cat "$FLEET_DIR/flush-ended" 2>/dev/null || echo null)
  note "{\"label\": \"rows flushed during that run (ended at second $ended of the run)\", \"rows\": $flushed}"
  tail -n 1 "$RESULTS" >&2
  if ((flushed < 1000000)); then
    note '{"label": "WARNING: the flush did not end within its run, which measured no flush"}'
    tail -n 1 "$RESULTS" >&2
  fi

  hup() {
    local before
    before=$(metric "$S" qrlaunch_resyncs_total)
    kill -HUP "$S_PID"
    for _ in $(seq 1 600); do
      [ "$(metric "$S" qrlaunch_resyncs_total)" != "$before" ] && break
      sleep 0.05
    done
  }
  scans "SIGHUP rebuild (S)" "$S" "$S_PID" hup
  # The overlay is folded at 4,096 keys: 4,090 writes before the run leave
  # the fold itself (and the new base's publish, the old one's freeing) to
  # the run, apart from the cost of taking a thousand writes a second.
  taskset -c 1 "$LT" propagation --admin "127.0.0.1:$((S + 1))" --token-file "$TOKEN_FILE" \
    --node "127.0.0.1:$S" --rate 1000 --writes 4090 --prefix before --json >/dev/null
  compaction_alone() {
    taskset -c 1 "$LT" propagation --admin "127.0.0.1:$((S + 1))" --token-file "$TOKEN_FILE" \
      --node "127.0.0.1:$S" --rate 100 --writes 100 --prefix alone --json >/dev/null
  }
  scans "compaction alone, after 4,096 writes (S)" "$S" "$S_PID" compaction_alone
  compaction() {
    taskset -c 1 "$LT" propagation --admin "127.0.0.1:$((S + 1))" --token-file "$TOKEN_FILE" \
      --node "127.0.0.1:$S" --rate 1000 --writes 4200 --prefix compact --json >/dev/null
  }
  scans "compaction after 4,200 writes (S)" "$S" "$S_PID" compaction
  import_s() { import $((S + 1)) "$FLEET_DIR/more.ndjson"; }
  # The import (spooling and checking, the transaction, the rebuild) takes
  # longer than one run: this one lasts twice as long.
  DURATION=$((DURATION * 2)) scans "1M-line import into its own store (S)" "$S" "$S_PID" import_s

  log "S: RSS after each of ten SIGHUP rebuilds"
  for i in $(seq 1 10); do
    hup
    # The new table is built once the follower counted the resync; give the
    # retire worker a moment to free the old one.
    sleep 3
    note "{\"label\": \"RSS after rebuild $i\", \"rss_kib\": $(rss_kib "$S_PID")}"
  done
  tail -n 10 "$RESULTS" >&2

  log "S: saturated, closed loop on its one core"
  taskset -c 1 "$LT" run --addr "127.0.0.1:$S" --connections 32 --duration 10s \
    --requests "$FLEET_DIR/scans.tsv" --label "saturated, closed loop (S)" --server-pid "$S_PID" --json \
    | tail -n 1 >>"$RESULTS"
  tail -n 1 "$RESULTS" >&2

  log "S: a restart on the same store"
  kill "$S_PID"
  wait "$S_PID" 2>/dev/null || true
  S_PID=
  start_s
  secs=$SECS
  sleep 2
  note "{\"label\": \"restart on the same store (about 1M codes), to ready\", \"seconds\": $secs, \"rss_kib\": $(rss_kib "$S_PID")}"
  tail -n 1 "$RESULTS" >&2
fi

log "results"
python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "${FEATURES:-system}" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}; allocator: {sys.argv[4]}")
print(f"{'run':<44} {'req/s':>7} {'p50 µs':>7} {'p99 µs':>8} {'p99.9 µs':>9} {'max µs':>8} {'node p99':>8} {'node max':>8} {'errors':>6} {'late µs':>8} {'preempted':>9}")
for r in rows:
    if "rps" in r:
        errors = sum(r.get("errors", {}).values())
        late = r.get("pacer_lag_max_us") or 0
        print(f"{r['label']:<44} {r['rps']:>7.0f} {r['p50_us']:>7.0f} {r['p99_us']:>8.0f} {r['p999_us']:>9.0f} "
              f"{r['max_us']:>8.0f} {r.get('service_p99_us') or 0:>8.0f} {r.get('service_max_us') or 0:>8.0f} "
              f"{errors:>6} {late:>8.0f} {r.get('server_preempted', 0):>9}")
for r in rows:
    if "rps" not in r:
        parts = []
        if "seconds" in r: parts.append(f"{r['seconds']:.2f} s")
        if "rss_kib" in r: parts.append(f"RSS {r['rss_kib'] / 1024:.1f} MiB")
        if "rows" in r: parts.append(f"{r['rows']} rows")
        if "sched_delay_max_ms" in r:
            parts.append(f"p99 {r['sched_delay_p99_ms']} ms, p99.9 {r['sched_delay_p999_ms']} ms, "
                         f"max {r['sched_delay_max_ms']} ms; {r['waits_over_1ms']} waits over 1 ms, "
                         f"longest on an idle core (the VM's) {r['longest_wait_on_idle_core_ms']} ms, "
                         f"behind (ms): {dict(list(r['ran_meanwhile_ms'].items())[:5])}")
        print(f"{r['label']}: {', '.join(parts)}" if parts else r["label"])
print("node p99/max: from the moment each request was sent (not its due time); late µs: the generator's own")
print("lateness (max); preempted: times the node was preempted during the run")
PY

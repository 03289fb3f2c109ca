#!/usr/bin/env bash
# qrlaunch against nginx `map` + `return 302` on the same table, the same
# request list and the same single core; our load generator and wrk on the
# other core. Loopback only; every run is bounded; everything started is
# stopped on exit.
#
#   bash loadtest/compare-nginx.sh
#
# Knobs (environment): CODES (1000000), RULES (10000), DURATION (10s),
# CONNECTIONS (32), SERVER_CORE (0), CLIENT_CORE (1), SKIP_IMPORT (unset).
set -euo pipefail
cd "$(dirname "$0")/.."

CODES=${CODES:-1000000}
RULES=${RULES:-10000}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
QR_PORT=${QR_PORT:-18480}
ADMIN_PORT=${ADMIN_PORT:-18481}
NGINX_PORT=${NGINX_PORT:-18482}

log() { printf '\n== %s ==\n' "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 && return
  log "installing $2"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need nginx nginx-light
need wrk wrk
need taskset util-linux
need python3 python3

WORK=$(mktemp -d /tmp/qrlaunch-compare.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log "building (release)"
cargo build --release --bins --quiet
QR=target/release/qrlaunch
LT=target/release/qrlaunch-loadtest

log "workload: $CODES codes, $RULES rules, seed 42"
$LT gen-table --codes "$CODES" --rules "$RULES" --out "$WORK/table.ndjson"
$LT gen-nginx-map --codes "$CODES" --out "$WORK/map.conf"
# nginx has no WeChat rule matching, so the shared list is codes only:
# 98% known, 2% unknown (404). The full mix is measured on qrlaunch alone.
$LT gen-requests --codes "$CODES" --rules "$RULES" --known 98 --legacy 0 --unknown 2 --count 100000 --out "$WORK/codes.tsv"
$LT gen-requests --codes "$CODES" --rules "$RULES" --count 100000 --out "$WORK/mix.tsv"

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    map_hash_max_size 4194304;
    map_hash_bucket_size 128;
    include $WORK/map.conf;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            if (\$qr_target) {
                add_header Cache-Control "public, max-age=60";
                return 302 \$qr_target;
            }
            return 404;
        }
    }
}
NGINX

cat > "$WORK/requests.lua" <<'LUA'
-- Cycles through a gen-requests file; prints p50/p99/p99.9 in microseconds and
-- socket errors (404s for the unknown codes are expected, so not counted).
local reqs = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do
    local host, target = line:match("([^\t]+)\t([^\t]+)")
    reqs[#reqs + 1] = wrk.format("GET", target, { Host = host })
  end
  i = math.random(#reqs)
end
function request()
  i = i % #reqs + 1
  return reqs[i]
end
function done(summary, latency, requests)
  io.write(string.format("WRK %d %.1f %d %d %d %d\n", summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

wait_ready() { # url
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "not ready: $1" >&2
  return 1
}

start_qrlaunch() { # cores threads extra-args...
  local cores=$1 threads=$2
  shift 2
  taskset -c "$cores" "$QR" --threads "$threads" --listen "127.0.0.1:$QR_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
    --data "$WORK/data" --table "$WORK/table.ndjson" --log warn "$@" 2>>"$WORK/qrlaunch.log" &
  QR_PID=$!
  PIDS+=("$QR_PID")
  wait_ready "http://127.0.0.1:$QR_PORT/readyz"
}

stop_qrlaunch() {
  kill "$QR_PID" 2>/dev/null || true
  wait "$QR_PID" 2>/dev/null || true
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

ours() { # label port requests-file [extra run args...]
  local label=$1 port=$2 file=$3
  shift 3
  taskset -c "$CLIENT_CORE" "$LT" run --addr "127.0.0.1:$port" --connections "$CONNECTIONS" --duration "${RUN_DURATION:-$DURATION}" \
    --requests "$file" --label "$label" --json "$@" | tail -n 1 | tee -a "$RESULTS" >&2
}

wrk_run() { # label port requests-file
  local line
  line=$(taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s "$WORK/requests.lua" \
    "http://127.0.0.1:$2/" -- "$3" | grep '^WRK')
  python3 - "$1" "$line" >>"$RESULTS" <<'PY'
import json, sys
label, line = sys.argv[1], sys.argv[2].split()
n, rps, p50, p99, p999, errors = int(line[1]), float(line[2]), *map(int, line[3:7])
print(json.dumps({"label": label, "mode": "wrk", "requests": n, "rps": rps, "p50_us": p50, "p99_us": p99,
                  "p999_us": p999, "errors": {"total": errors} if errors else {}}))
PY
  tail -n 1 "$RESULTS" >&2
}

log "qrlaunch: seeding its store from the table (first start)"
start_qrlaunch "$SERVER_CORE" 1
log "qrlaunch, 1 core, metrics on: closed loop and wrk"
ours "qrlaunch" "$QR_PORT" "$WORK/codes.tsv"
wrk_run "qrlaunch (wrk)" "$QR_PORT" "$WORK/codes.tsv"
ours "qrlaunch full mix" "$QR_PORT" "$WORK/mix.tsv"
# 70% of the saturation rate of the same (full) mix the open-loop runs send.
SAT=$(python3 -c "import json,sys; print(int(json.loads(open(sys.argv[1]).readlines()[-1])['rps']))" "$RESULTS")
RATE=$((SAT * 70 / 100))
log "qrlaunch open loop at 70% of its saturation ($RATE/s)"
ours "qrlaunch open 70%" "$QR_PORT" "$WORK/mix.tsv" --rate "$RATE"
ours "qrlaunch open 70% (codes list)" "$QR_PORT" "$WORK/codes.tsv" --rate "$RATE"
log "qrlaunch open loop at 70% while the table is rebuilt from the store (SIGHUP at 1 s)"
( sleep 1; kill -HUP "$QR_PID" ) &
ours "qrlaunch open 70% + SIGHUP rebuild" "$QR_PORT" "$WORK/mix.tsv" --rate "$RATE"
if [ -z "${SKIP_IMPORT:-}" ]; then
  log "qrlaunch open loop at 70% while an admin import of $CODES lines runs"
  TOKEN=$(cat "$WORK/data/admin-token")
  # The admin client stands for an operator elsewhere: its network work is
  # charged to the server's core at low priority, never to the generator's.
  ( sleep 1; nice -n 19 taskset -c "$SERVER_CORE" curl -s -o "$WORK/import.json" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' \
      --data-binary "@$WORK/table.ndjson" "http://127.0.0.1:$ADMIN_PORT/admin/v1/import" ) &
  IMPORT_PID=$!
  RUN_DURATION=20s ours "qrlaunch open 70% + 1M import" "$QR_PORT" "$WORK/mix.tsv" --rate "$RATE"
  wait "$IMPORT_PID" || true
  echo "import answered: $(cat "$WORK/import.json" 2>/dev/null)" >&2
fi
stop_qrlaunch

log "qrlaunch, 1 core, metrics off"
start_qrlaunch "$SERVER_CORE" 1 --no-metrics
ours "qrlaunch metrics off" "$QR_PORT" "$WORK/codes.tsv"
stop_qrlaunch

log "qrlaunch, 2 server cores (the generator shares core $CLIENT_CORE)"
start_qrlaunch "$SERVER_CORE,$CLIENT_CORE" 2
ours "qrlaunch 2 cores" "$QR_PORT" "$WORK/codes.tsv"
stop_qrlaunch

log "nginx $(nginx -v 2>&1 | sed 's/.*\///'), 1 worker, same map"
taskset -c "$SERVER_CORE" nginx -c "$WORK/nginx.conf" -p "$WORK" &
PIDS+=($!)
for _ in $(seq 1 600); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/zz-not-a-code" || true)
  [ "$code" = 404 ] && break
  sleep 0.2
done
ours "nginx" "$NGINX_PORT" "$WORK/codes.tsv"
wrk_run "nginx (wrk)" "$NGINX_PORT" "$WORK/codes.tsv"
log "nginx open loop at the same rate, for the tail side by side"
ours "nginx open 70% (codes list)" "$NGINX_PORT" "$WORK/codes.tsv" --rate "$RATE"

log "results"
python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {r["label"]: r for r in rows}
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}; server pinned to 1 core, load generator to the other")
print(f"{'run':<38} {'req/s':>10} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9} {'errors':>7}")
for r in rows:
    errors = sum(r.get("errors", {}).values())
    print(f"{r['label']:<38} {r['rps']:>10.0f} {r['p50_us']:>9.0f} {r['p99_us']:>9.0f} {r['p999_us']:>9.0f} {errors:>7}")
def ratio(a, b):
    return by[a]["rps"] / by[b]["rps"] if a in by and b in by and by[b]["rps"] else float("nan")
print()
print(f"qrlaunch / nginx throughput, our generator: {ratio('qrlaunch', 'nginx'):.2f}x (target >= 1.25x)")
print(f"qrlaunch / nginx throughput, wrk:           {ratio('qrlaunch (wrk)', 'nginx (wrk)'):.2f}x")
if "qrlaunch metrics off" in by:
    cost = 1 - by["qrlaunch"]["rps"] / by["qrlaunch metrics off"]["rps"]
    print(f"metrics cost: {cost*100:.1f}% of saturated throughput (target <= 5%)")
for label in ["qrlaunch open 70%", "qrlaunch open 70% (codes list)", "nginx open 70% (codes list)",
              "qrlaunch open 70% + SIGHUP rebuild", "qrlaunch open 70% + 1M import"]:
    if label in by:
        r = by[label]
        print(f"{label}: p99 {r['p99_us']/1000:.2f} ms, p99.9 {r['p999_us']/1000:.2f} ms (targets 1 ms / 2 ms)")
if "qrlaunch 2 cores" in by:
    print(f"2 server cores / 1: {ratio('qrlaunch 2 cores', 'qrlaunch'):.2f}x")
PY

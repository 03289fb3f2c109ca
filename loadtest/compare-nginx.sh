#!/usr/bin/env bash
# qrlaunch against nginx `map` + `return 302` on the same table, the same
# request list and the same single core; our load generator and wrk on the
# other core. Loopback only; every run is bounded; everything started is
# stopped on exit.
#
#   bash loadtest/compare-nginx.sh
#
# Knobs (environment): CODES (1000000), RULES (10000), DURATION (10s),
# ROUNDS (2), CONNECTIONS (32), SERVER_CORE (0), CLIENT_CORE (1),
# SKIP_IMPORT (unset), KEEP (unset: set it to keep the work directory with
# results.jsonl), BASELINE_REV (62aa233: the qrlaunch the 302 path is
# compared with, built once into target/baseline/; empty to skip).
#
# Every request carries an iPhone Safari User-Agent (UA), whose answer is
# the 302; the page rows send an Android Chrome one (ANDROID_UA), whose
# answer is the 200 launch page.
#
# The machine this was written on is a shared VM whose tail latency drifts
# over minutes (the host's other tenants), so servers being compared run
# side by side, pinned to the same core, and are measured alternately,
# ROUNDS times each: qrlaunch, nginx, the baseline qrlaunch, qrlaunch's
# Android page and qrlaunch without counting; then with and without metrics.
#
# Then scans over TLS, qrlaunch's --tls-listen against nginx `ssl` with the
# same ECDSA P-256 certificate, driven by wrk: keep-alive, and a new
# connection (a full handshake) per request. TLS_ONLY=1 runs only that part.
#
# Every run of our generator also reports how busy the server's and the
# generator's cores were: a saturated run whose server core is not near
# 100% measured the generator, not the server.
set -euo pipefail
cd "$(dirname "$0")/.."
source loadtest/lib.sh

CODES=${CODES:-1000000}
RULES=${RULES:-10000}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CORE=${SERVER_CORE:-0}
CLIENT_CORE=${CLIENT_CORE:-1}
QR_PORT=${QR_PORT:-18480}
ADMIN_PORT=${ADMIN_PORT:-18481}
NGINX_PORT=${NGINX_PORT:-18482}
BARE_PORT=${BARE_PORT:-18483}
BARE_ADMIN_PORT=${BARE_ADMIN_PORT:-18484}
BASE_PORT=${BASE_PORT:-18485}
BASE_ADMIN_PORT=${BASE_ADMIN_PORT:-18486}
NOSTATS_PORT=${NOSTATS_PORT:-18487}
NOSTATS_ADMIN_PORT=${NOSTATS_ADMIN_PORT:-18488}
QR_TLS_PORT=${QR_TLS_PORT:-18489}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-18490}
BASELINE_REV=${BASELINE_REV-62aa233}
UA=${UA:-Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1}
ANDROID_UA=${ANDROID_UA:-Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36}

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
need openssl openssl

WORK=$(mktemp -d /tmp/qrlaunch-compare.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

log "building (release)"
cargo build --release --bins --quiet
QR=target/release/qrlaunch
LT=target/release/qrlaunch-loadtest

# The baseline: an earlier commit of this repository, built once from a git
# worktree into target/baseline/ (rebuilt when BASELINE_REV names another).
BASE=""
if [ -n "${TLS_ONLY:-}" ]; then BASELINE_REV=""; fi
if [ -n "$BASELINE_REV" ]; then
  rev=$(git rev-parse --verify "$BASELINE_REV^{commit}")
  BASE=target/baseline/qrlaunch-$rev
  if [ ! -x "$BASE" ]; then
    log "building the baseline $BASELINE_REV (release, once)"
    rm -rf target/baseline/src
    git worktree prune
    git worktree add --detach -f target/baseline/src "$rev" >/dev/null
    (cd target/baseline/src && CARGO_TARGET_DIR=../target cargo build --release --bin qrlaunch --quiet)
    cp target/baseline/target/release/qrlaunch "$BASE"
    git worktree remove --force target/baseline/src
  fi
fi

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
$(nginx_map_settings "$WORK/map.conf")
    server {
        listen 127.0.0.1:$NGINX_PORT;
$(nginx_map_answer)
    }
    server {
        listen 127.0.0.1:$NGINX_TLS_PORT ssl;
        ssl_certificate $WORK/live/localhost/fullchain.pem;
        ssl_certificate_key $WORK/live/localhost/privkey.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
$(nginx_map_answer)
    }
}
NGINX
# One certificate for both TLS servers, in certbot's layout for qrlaunch.
mkdir -p "$WORK/live/localhost"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$WORK/live/localhost/privkey.pem" \
  -out "$WORK/live/localhost/fullchain.pem" 2>/dev/null

wait_ready() { # url
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.2
  done
  echo "not ready: $1" >&2
  return 1
}

start_qrlaunch() { # name cores threads port admin-port extra-args... (sets PID_<name>)
  local name=$1 cores=$2 threads=$3 port=$4 admin=$5
  shift 5
  local binary=$QR metrics=(--metrics-listen 127.0.0.1:0)
  if [ "$name" = base ]; then binary=$BASE metrics=(); fi
  taskset -c "$cores" "$binary" --threads "$threads" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --data "$WORK/data-$name" --table "$WORK/table.ndjson" --log warn "${metrics[@]}" "$@" 2>>"$WORK/qrlaunch-$name.log" &
  local pid=$!
  PIDS+=("$pid")
  printf -v "PID_$name" '%s' "$pid"
  wait_ready "http://127.0.0.1:$port/readyz"
}

stop() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"

ours() { # label port server-pid requests-file [extra run args...]
  local label=$1 port=$2 pid=$3 file=$4
  shift 4
  taskset -c "$CLIENT_CORE" "$LT" run --addr "127.0.0.1:$port" --connections "$CONNECTIONS" --duration "${RUN_DURATION:-$DURATION}" \
    --requests "$file" --label "$label" --server-pid "$pid" --watch-cores "$SERVER_CORE,$CLIENT_CORE" --json \
    --user-agent "${RUN_UA:-$UA}" "$@" \
    | tail -n 1 | tee -a "$RESULTS" >&2
}

wrk_run() { # label port requests-file [base-url [close]]
  local line
  line=$(taskset -c "$CLIENT_CORE" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" -s loadtest/wrk-requests.lua \
    "${4:-http://127.0.0.1:$2}/" -- "$3" "$UA" ${5:-} | grep '^WRK')
  python3 - "$1" "$line" >>"$RESULTS" <<'PY'
import json, sys
label, line = sys.argv[1], sys.argv[2].split()
n, rps, p50, p99, p999, errors = int(line[1]), float(line[2]), *map(int, line[3:7])
print(json.dumps({"label": label, "mode": "wrk", "requests": n, "rps": rps, "p50_us": p50, "p99_us": p99,
                  "p999_us": p999, "errors": {"total": errors} if errors else {}}))
PY
  tail -n 1 "$RESULTS" >&2
}

tls_phase() {
  log "scans over TLS: qrlaunch --tls-listen and nginx ssl, one ECDSA P-256 certificate, wrk, alternately ($ROUNDS rounds)"
  start_qrlaunch tls "$SERVER_CORE" 1 "$QR_PORT" "$ADMIN_PORT" \
    --tls-listen "127.0.0.1:$QR_TLS_PORT" --tls-cert-dir "$WORK/live"
  taskset -c "$SERVER_CORE" nginx -c "$WORK/nginx.conf" -p "$WORK" &
  local master=$!
  PIDS+=("$master")
  for _ in $(seq 1 600); do
    [ "$(curl -sk -o /dev/null -w '%{http_code}' "https://localhost:$NGINX_TLS_PORT/zz-not-a-code" || true)" = 404 ] && break
    sleep 0.2
  done
  curl -sk -o /dev/null "https://localhost:$QR_TLS_PORT/healthz"
  # A warm-up of each, not recorded: in the first run of this phase nginx's
  # keep-alive run gave a quarter of its later throughput.
  DURATION=5s wrk_run "warm-up (not counted)" "$QR_TLS_PORT" "$WORK/codes.tsv" "https://localhost:$QR_TLS_PORT"
  DURATION=5s wrk_run "warm-up (not counted)" "$NGINX_TLS_PORT" "$WORK/codes.tsv" "https://localhost:$NGINX_TLS_PORT"
  for _ in $(seq 1 "$ROUNDS"); do
    wrk_run "qrlaunch TLS keep-alive (wrk)" "$QR_TLS_PORT" "$WORK/codes.tsv" "https://localhost:$QR_TLS_PORT"
    wrk_run "nginx TLS keep-alive (wrk)" "$NGINX_TLS_PORT" "$WORK/codes.tsv" "https://localhost:$NGINX_TLS_PORT"
    wrk_run "qrlaunch TLS new connections (wrk)" "$QR_TLS_PORT" "$WORK/codes.tsv" "https://localhost:$QR_TLS_PORT" close
    wrk_run "nginx TLS new connections (wrk)" "$NGINX_TLS_PORT" "$WORK/codes.tsv" "https://localhost:$NGINX_TLS_PORT" close
  done
  echo "{\"label\": \"tls rss\", \"qrlaunch_kib\": $(rss_kib "$PID_tls"), \"nginx_kib\": $(rss_kib "$(pgrep -P "$master" | head -n 1)")}" >&2
  stop "$master"
  stop "$PID_tls"
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

if [ -n "${TLS_ONLY:-}" ]; then
  tls_phase
  SKIP_MAIN=1
fi

if [ -z "${SKIP_MAIN:-}" ]; then
log "qrlaunch (--threads 1, metrics on) and nginx $(nginx -v 2>&1 | sed 's/.*\///') (1 worker), both on core $SERVER_CORE"
start_qrlaunch qr "$SERVER_CORE" 1 "$QR_PORT" "$ADMIN_PORT"
taskset -c "$SERVER_CORE" nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_MASTER=$!
PIDS+=("$NGINX_MASTER")
for _ in $(seq 1 600); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$NGINX_PORT/zz-not-a-code" || true)
  [ "$code" = 404 ] && break
  sleep 0.2
done
PID_nginx=$(pgrep -P "$NGINX_MASTER" | head -n 1)

if [ -n "$BASE" ]; then
  log "the baseline qrlaunch $BASELINE_REV, and qrlaunch --no-stats, also on core $SERVER_CORE"
  start_qrlaunch base "$SERVER_CORE" 1 "$BASE_PORT" "$BASE_ADMIN_PORT"
fi
start_qrlaunch nostats "$SERVER_CORE" 1 "$NOSTATS_PORT" "$NOSTATS_ADMIN_PORT" --no-stats

log "saturation, closed loop, alternately ($ROUNDS rounds)"
for _ in $(seq 1 "$ROUNDS"); do
  ours "qrlaunch" "$QR_PORT" "$PID_qr" "$WORK/codes.tsv"
  ours "nginx" "$NGINX_PORT" "$PID_nginx" "$WORK/codes.tsv"
  [ -n "$BASE" ] && ours "baseline $BASELINE_REV" "$BASE_PORT" "$PID_base" "$WORK/codes.tsv"
  RUN_UA=$ANDROID_UA ours "qrlaunch Android page" "$QR_PORT" "$PID_qr" "$WORK/codes.tsv" --answer-status 200
  ours "qrlaunch no counting" "$NOSTATS_PORT" "$PID_nostats" "$WORK/codes.tsv"
done
echo "{\"label\": \"rss\", \"qrlaunch_kib\": $(rss_kib "$PID_qr"), \"nginx_kib\": $(rss_kib "$PID_nginx")}" >"$WORK/rss.json"
[ -n "$BASE" ] && stop "$PID_base"
ours "qrlaunch full mix" "$QR_PORT" "$PID_qr" "$WORK/mix.tsv"
# 70% of the saturation rate of the same (full) mix the open-loop runs send.
SAT=$(python3 -c "import json,sys; print(int(json.loads(open(sys.argv[1]).readlines()[-1])['rps']))" "$RESULTS")
RATE=$((SAT * 70 / 100))

log "open loop at 70% of qrlaunch's full-mix saturation ($RATE/s), alternately, after a warm-up of each"
# Warm-up (not recorded): nginx's first open-loop run after the closed-loop
# runs had p99 31-37 ms in 4 of 4 runs of this script on the test VM, and
# the next one about 1 ms; qrlaunch's first one was not worse than its later ones.
warm() { # port server-pid
  taskset -c "$CLIENT_CORE" "$LT" run --addr "127.0.0.1:$1" --connections "$CONNECTIONS" --duration 5s \
    --requests "$WORK/codes.tsv" --rate "$RATE" --label "warm-up (not counted)" --server-pid "$2" --json | tail -n 1 >&2
}
warm "$QR_PORT" "$PID_qr"
warm "$NGINX_PORT" "$PID_nginx"
for _ in $(seq 1 "$ROUNDS"); do
  ours "qrlaunch open 70% (codes list)" "$QR_PORT" "$PID_qr" "$WORK/codes.tsv" --rate "$RATE"
  ours "nginx open 70% (codes list)" "$NGINX_PORT" "$PID_nginx" "$WORK/codes.tsv" --rate "$RATE"
  ours "qrlaunch open 70% no counting" "$NOSTATS_PORT" "$PID_nostats" "$WORK/codes.tsv" --rate "$RATE"
done
stop "$PID_nostats"
ours "qrlaunch open 70% full mix" "$QR_PORT" "$PID_qr" "$WORK/mix.tsv" --rate "$RATE"

log "qrlaunch open loop at 70% while the table is rebuilt from the store (SIGHUP at 1 s)"
( sleep 1; kill -HUP "$PID_qr" ) &
ours "qrlaunch open 70% + SIGHUP rebuild" "$QR_PORT" "$PID_qr" "$WORK/mix.tsv" --rate "$RATE"
if [ -z "${SKIP_IMPORT:-}" ]; then
  log "qrlaunch open loop at 70% while an admin import of $CODES lines runs"
  TOKEN=$(cat "$WORK/data-qr/admin-token")
  # The admin client stands for an operator elsewhere: its network work is
  # charged to the server's core at low priority, never to the generator's.
  ( sleep 1; nice -n 19 taskset -c "$SERVER_CORE" curl -s -o "$WORK/import.json" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/x-ndjson' \
      --data-binary "@$WORK/table.ndjson" "http://127.0.0.1:$ADMIN_PORT/admin/v1/import" ) &
  IMPORT_PID=$!
  RUN_DURATION=20s ours "qrlaunch open 70% + 1M import" "$QR_PORT" "$PID_qr" "$WORK/mix.tsv" --rate "$RATE"
  wait "$IMPORT_PID" || true
  echo "import answered: $(cat "$WORK/import.json" 2>/dev/null)" >&2
fi

# wrk last: in the seconds after a wrk run, an open-loop run was once seen
# with a much worse tail on the server wrk had driven.
log "the same codes list driven by wrk -t1 -c$CONNECTIONS"
wrk_run "qrlaunch (wrk)" "$QR_PORT" "$WORK/codes.tsv"
wrk_run "nginx (wrk)" "$NGINX_PORT" "$WORK/codes.tsv"
stop "$NGINX_MASTER"

log "metrics on vs off (--no-metrics), alternately ($ROUNDS rounds)"
start_qrlaunch bare "$SERVER_CORE" 1 "$BARE_PORT" "$BARE_ADMIN_PORT" --no-metrics
for _ in $(seq 1 "$ROUNDS"); do
  ours "qrlaunch metrics on" "$QR_PORT" "$PID_qr" "$WORK/codes.tsv"
  ours "qrlaunch metrics off" "$BARE_PORT" "$PID_bare" "$WORK/codes.tsv"
done
stop "$PID_bare"
stop "$PID_qr"

log "qrlaunch on 2 server cores, --threads 2 (the generator shares core $CLIENT_CORE: this machine has no third)"
start_qrlaunch qr "$SERVER_CORE,$CLIENT_CORE" 2 "$QR_PORT" "$ADMIN_PORT"
ours "qrlaunch 2 cores" "$QR_PORT" "$PID_qr" "$WORK/codes.tsv"
stop "$PID_qr"

tls_phase
fi

log "results"
python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$SERVER_CORE" "$CLIENT_CORE" "$BASELINE_REV" "$WORK/rss.json" <<'PY'
import json, sys
from collections import defaultdict
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs = defaultdict(list)
for r in rows:
    runs[r["label"]].append(r)
server_core, client_core = int(sys.argv[4]), int(sys.argv[5])
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}; server pinned to core {server_core}, load generator to core {client_core}")
print("every request with an iPhone Safari User-Agent, but the 'Android page' rows (Android Chrome: 200 page)")
print("request list: codes only (98% known -> 302, 2% unknown -> 404; nginx has no WeChat rule matching),")
print("except the rows named 'full mix' (90% codes, 8% legacy URLs, 2% unknown; qrlaunch only)")
print(f"{'run (in the order run)':<40} {'req/s':>9} {'p50 µs':>8} {'p99 µs':>8} {'p99.9 µs':>9} {'max µs':>8} {'srv core':>8} {'gen core':>8} {'errors':>6}")
def core(r, c):
    for k, v in r.get("core_busy_percent", []):
        if k == c:
            return f"{v:.0f}%"
    return "-"
for r in rows:
    errors = sum(r.get("errors", {}).values())
    mx = r.get("max_us")
    mx = f"{mx:>8.0f}" if mx is not None else f"{'-':>8}"
    print(f"{r['label']:<40} {r['rps']:>9.0f} {r['p50_us']:>8.0f} {r['p99_us']:>8.0f} {r['p999_us']:>9.0f} {mx} "
          f"{core(r, server_core):>8} {core(r, client_core):>8} {errors:>6}")
open_rows = [r for r in rows if r.get("mode") == "open"]
if open_rows:
    print()
    print("open loop: latency from due time vs from send, and the generator's own lateness (µs)")
    print(f"{'run':<40} {'p99 due':>8} {'p99.9 due':>9} {'p99.9 send':>10} {'max send':>9} {'gen late max':>12} {'srv preempted':>13}")
    for r in open_rows:
        print(f"{r['label']:<40} {r['p99_us']:>8.0f} {r['p999_us']:>9.0f} {r.get('service_p999_us', 0):>10.0f} "
              f"{r.get('service_max_us', 0):>9.0f} {r.get('pacer_lag_max_us', 0):>12.0f} {r.get('server_preempted', '-'):>13}")
def mean(label, key="rps"):
    v = [r[key] for r in runs.get(label, [])]
    return sum(v) / len(v) if v else float("nan")
def ratio(a, b):
    return mean(a) / mean(b)
def each(label, key, scale=1.0, fmt="{:.2f}"):
    return " / ".join(fmt.format(r[key] / scale) for r in runs.get(label, [])) or "-"
print()
print(f"qrlaunch / nginx throughput, our generator: {ratio('qrlaunch', 'nginx'):.2f}x "
      f"(mean of {len(runs['qrlaunch'])} alternate runs each; target >= 1.25x, aim 1.5x)")
print(f"qrlaunch / nginx throughput, wrk:           {ratio('qrlaunch (wrk)', 'nginx (wrk)'):.2f}x")
baseline = f"baseline {sys.argv[6]}"
if runs.get(baseline):
    print(f"qrlaunch / {baseline} throughput, iPhone UA: {ratio('qrlaunch', baseline):.3f}x "
          f"(runs: {each('qrlaunch', 'rps', 1, '{:.0f}')} vs {each(baseline, 'rps', 1, '{:.0f}')}; target >= 0.95x)")
def cpu_per_request_us(label):
    # The server process's CPU time per answered request, in µs.
    v = [r["server_cpu_percent"] / 100 / r["rps"] * 1e6 for r in runs.get(label, []) if r.get("server_cpu_percent")]
    return sum(v) / len(v) if v else float("nan")
if runs.get("qrlaunch Android page"):
    page, found = cpu_per_request_us("qrlaunch Android page"), cpu_per_request_us("qrlaunch")
    print(f"Android page: {mean('qrlaunch Android page'):.0f} req/s; server CPU per request {page:.2f} µs "
          f"vs {found:.2f} µs for the 302: {page / found:.2f}x (target <= 2x)")
if runs.get("qrlaunch no counting"):
    cost = 1 - mean("qrlaunch") / mean("qrlaunch no counting")
    print(f"counting cost: {cost*100:.1f}% of saturated throughput (mean of alternate runs; target <= 3%)")
    label_on, label_off = "qrlaunch open 70% (codes list)", "qrlaunch open 70% no counting"
    if runs.get(label_off):
        print(f"open 70% p99 with counting (flush every 10 s) {each(label_on, 'p99_us', 1000)} ms, "
              f"without {each(label_off, 'p99_us', 1000)} ms")
try:
    rss = json.load(open(sys.argv[7]))
    print(f"RSS after the saturation runs: qrlaunch {rss['qrlaunch_kib']/1024:.0f} MiB, nginx worker "
          f"{rss['nginx_kib']/1024:.0f} MiB: {rss['nginx_kib']/rss['qrlaunch_kib']:.1f}x less for qrlaunch")
except (OSError, ValueError, KeyError):
    pass
if runs.get("qrlaunch metrics off"):
    cost = 1 - mean("qrlaunch metrics on") / mean("qrlaunch metrics off")
    print(f"metrics cost: {cost*100:.1f}% of saturated throughput (mean of alternate runs; target <= 5%)")
for label in ["qrlaunch open 70% (codes list)", "nginx open 70% (codes list)", "qrlaunch open 70% full mix",
              "qrlaunch open 70% + SIGHUP rebuild", "qrlaunch open 70% + 1M import"]:
    if label in runs:
        print(f"{label}: p99 {each(label, 'p99_us', 1000)} ms, p99.9 {each(label, 'p999_us', 1000)} ms (targets 1 ms / 2 ms)")
for kind in ["keep-alive", "new connections"]:
    a, b = f"qrlaunch TLS {kind} (wrk)", f"nginx TLS {kind} (wrk)"
    if runs.get(a) and runs.get(b):
        print(f"TLS {kind}: qrlaunch / nginx throughput {ratio(a, b):.2f}x "
              f"(runs: {each(a, 'rps', 1, '{:.0f}')} vs {each(b, 'rps', 1, '{:.0f}')} req/s; "
              f"p99 {each(a, 'p99_us', 1000)} vs {each(b, 'p99_us', 1000)} ms)")
if runs.get("qrlaunch 2 cores"):
    print(f"2 server cores / 1: {mean('qrlaunch 2 cores') / mean('qrlaunch metrics on'):.2f}x "
          "(vs the metrics-on runs; the generator shares one of the 2 cores)")
PY

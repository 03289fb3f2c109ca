#!/usr/bin/env bash
# qrlaunch behind Varnish with deploy/varnish/qrlaunch.vcl, on loopback:
#   1. hit rate: the load generator through the cache, per client class
#      (iPhone, Android, WeChat, desktop User-Agents), over the same list of
#      100,000 requests for 1,000,000 codes and 10,000 rules: one pass into
#      the empty cache, then the list again; hits and misses from
#      varnishstat, requests that reached qrlaunch from its own metrics;
#   2. change to answer: one code changed 100 times through the admin API;
#      after each 2xx, the time until a scan through the cache gets the new
#      answer (qrlaunch-loadtest purge).
#
#   bash loadtest/cdn.sh
#
# Knobs (environment): DURATION (20s), CONNECTIONS (32), CHANGES (100),
# PORT (18280: qrlaunch; +1 admin, +2 metrics, +3 Varnish). qrlaunch and
# Varnish are pinned to core 0, the generator to core 1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-32}
CHANGES=${CHANGES:-100}
PORT=${PORT:-18280}
CACHE_PORT=$((PORT + 3))

log() { printf '\n== %s ==\n' "$*" >&2; }

missing=()
command -v varnishd >/dev/null || missing+=(varnish)
ls /usr/lib/*/varnish/vmods/libvmod_xkey.so >/dev/null 2>&1 || missing+=(varnish-modules)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq >/dev/null
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

log "building (release)"
cargo build --release --bins --quiet
QR=target/release/qrlaunch
LT=target/release/qrlaunch-loadtest

WORK=$(mktemp -d /tmp/qrlaunch-cdn.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

log "workload: 1,000,000 codes, 10,000 rules"
$LT gen-table --codes 1000000 --rules 10000 --out "$WORK/table.ndjson"
$LT gen-requests --codes 1000000 --rules 10000 --count 100000 --out "$WORK/mix.tsv"

# The purge secret the VCL checks, readable by varnishd's worker.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/purge.secret"
chmod 644 "$WORK/purge.secret"
QRLAUNCH_PURGE_HEADER="Qrlaunch-Purge-Token: $(cat "$WORK/purge.secret")" \
  taskset -c 0 "$QR" --threads 1 --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$((PORT + 1))" \
  --metrics-listen "127.0.0.1:$((PORT + 2))" --data "$WORK/data" --table "$WORK/table.ndjson" --log warn \
  --client-header X-QR-Client --purge-url "http://127.0.0.1:$CACHE_PORT" 2>"$WORK/qrlaunch.log" >/dev/null &
PID_QR=$!
PIDS+=("$PID_QR")
# Storage: the four classes' answers for 100,000 URLs, the pages with their
# QR codes, outgrow 1 GB; Varnish then evicts and fails fetches it cannot
# store (503s and cut bodies in the cold passes).
sed -e "s/\.port = \"8080\";/.port = \"$PORT\";/" -e "s|/etc/varnish/qrlaunch-purge.secret|$WORK/purge.secret|" \
  deploy/varnish/qrlaunch.vcl >"$WORK/qrlaunch.vcl"
taskset -c 0 varnishd -F -n "$WORK/varnish" -f "$WORK/qrlaunch.vcl" -a "127.0.0.1:$CACHE_PORT" -s malloc,4g \
  >"$WORK/varnish.log" 2>&1 &
PIDS+=($!)
for url in "http://127.0.0.1:$PORT/readyz" "http://127.0.0.1:$CACHE_PORT/healthz"; do
  for _ in $(seq 1 600); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done
done

stat() { varnishstat -n "$WORK/varnish" -1 -f MAIN.cache_hit -f MAIN.cache_miss -f MAIN.cache_hitmiss -f MAIN.cache_hitpass \
  | awk '$1 == "MAIN.cache_hit" {h = $2} $1 == "MAIN.cache_miss" {m = $2} END {print h + 0, m + 0}'; }
origin() { curl -s "http://127.0.0.1:$((PORT + 2))/metrics" | awk '/^qrlaunch_requests_total/ {s += $2} END {print s + 0}'; }

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
declare -A UAS=(
  [iphone]="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
  [android]="Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36"
  [wechat]="Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP2A.240705.005; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 XWEB/1260117 MMWEBSDK/20240501 MMWEBID/1234 MicroMessenger/8.0.50.2701(0x28003253) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64"
  [desktop]="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)
declare -A STATUS=([iphone]=302 [android]=200 [wechat]=200 [desktop]=200)

log "hit rate through Varnish, closed loop, per class: one pass over the list (cold), then $DURATION (warm)"
through_cache() { # label class [run args...]
  local label=$1 class=$2
  shift 2
  read -r h0 m0 < <(stat)
  o0=$(origin)
  taskset -c 1 "$LT" run --addr "127.0.0.1:$CACHE_PORT" --connections "$CONNECTIONS" \
    --requests "$WORK/mix.tsv" --user-agent "${UAS[$class]}" --answer-status "${STATUS[$class]}" \
    --label "$label" --json "$@" | tail -n 1 >"$WORK/run.json"
  sleep 0.5
  read -r h1 m1 < <(stat)
  o1=$(origin)
  python3 - "$WORK/run.json" "$((h1 - h0))" "$((m1 - m0))" "$((o1 - o0))" >>"$RESULTS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["hits"], r["misses"], r["origin_requests"] = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(json.dumps(r))
PY
  tail -n 1 "$RESULTS" >&2
}
for class in iphone android wechat desktop; do
  through_cache "$class, cold pass" "$class" --max-requests 100000 --duration 120s
  through_cache "$class, warm" "$class" --duration "$DURATION"
done

log "change to answer through Varnish: $CHANGES changes of one code"
taskset -c 1 "$LT" purge --admin "127.0.0.1:$((PORT + 1))" --token-file "$WORK/data/admin-token" \
  --cache "127.0.0.1:$CACHE_PORT" --changes "$CHANGES" --json | tee -a "$RESULTS" >&2
purges=$(curl -s "http://127.0.0.1:$((PORT + 2))/metrics" | grep '^qrlaunch_purges_total' || true)
# Evictions and failed allocations: non-zero means the storage (-s) was too
# small for the objects, and misses were answered 503 or cut short.
storage=$(varnishstat -n "$WORK/varnish" -1 -f MAIN.n_lru_nuked -f SMA.s0.c_fail -f SMA.s0.g_bytes | awk '{print $1, $2}')

log "results"
python3 - "$RESULTS" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(varnishd -V 2>&1 | head -n 1)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"machine: {sys.argv[2]} cores, {sys.argv[3]}; {sys.argv[4]}")
print("request list: 100,000 requests (90% codes, 8% legacy URLs, 2% unknown); one client class per run;")
print("cold: one pass over the list into an empty cache (for that class); warm: the list cycled again")
print(f"{'run':<32} {'req/s':>8} {'p50 µs':>7} {'p99 µs':>7} {'hits':>9} {'misses':>8} {'hit rate':>8} {'to origin':>9} {'errors':>6}")
for r in rows:
    if "hits" in r:
        errors = sum(r.get("errors", {}).values())
        rate = r["hits"] / max(1, r["hits"] + r["misses"])
        print(f"{r['label']:<32} {r['rps']:>8.0f} {r['p50_us']:>7.0f} {r['p99_us']:>7.0f} {r['hits']:>9} {r['misses']:>8} "
              f"{rate*100:>7.1f}% {r['origin_requests']:>9} {errors:>6}")
    else:
        print(f"{r['label']}: {r['changes']} changes, {r['lost']} not seen within 10 s; admin 2xx to new answer through "
              f"the cache: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms (looked every {r['poll_ms']:.0f} ms)")
PY
echo "$purges"
echo "$storage"

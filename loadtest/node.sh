# One node at a time on loopback ports the kernel picks, for the load
# scripts that compare builds side by side (first-start.sh, writes.sh).
# Sourced, not run. The script sets WORK (a temporary directory) first and
# stops NODE_PID in its exit trap.

LT=${LOADTEST:-target/release/qrlaunch-loadtest}

# node_bins [BIN...]: the builds to compare into BINS: this tree's release
# build when none is named (built first), else each must be executable.
# Builds qrlaunch-loadtest when it is missing.
node_bins() {
  if (($# == 0)); then
    cargo build --release --bins --quiet
    set -- target/release/qrlaunch
  elif [ ! -x "$LT" ]; then
    cargo build --release --bin qrlaunch-loadtest --quiet
  fi
  for bin in "$@"; do
    [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }
  done
  BINS=("$@")
}

# node_start CPUS BIN [ARGS...]: starts BIN with ARGS, pinned to CPUS (a
# taskset list; empty: not pinned), its output in $WORK/stdout and its log
# in $WORK/log; sets NODE_PID.
node_start() {
  local cpus=$1
  shift
  ${cpus:+taskset -c "$cpus"} "$@" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 >"$WORK/stdout" 2>"$WORK/log" &
  NODE_PID=$!
}

# node_wait_ready: waits until the node's /readyz answers 200 (at most
# 120 s; a node that stops or never gets ready ends the script); sets
# NODE_SCAN and NODE_ADMIN (URLs).
node_wait_ready() {
  NODE_SCAN=
  NODE_ADMIN=
  for _ in $(seq 1 2400); do
    if [ -z "$NODE_SCAN" ]; then
      NODE_SCAN=$(grep -o '"scan":"[^"]*"' "$WORK/stdout" 2>/dev/null | cut -d'"' -f4 || true)
      NODE_ADMIN=$(grep -o '"admin":"[^"]*"' "$WORK/stdout" 2>/dev/null | cut -d'"' -f4 || true)
    fi
    if [ -n "$NODE_SCAN" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "$NODE_SCAN/readyz")" = 200 ]; then
      return 0
    fi
    kill -0 "$NODE_PID" 2>/dev/null || { echo "the node stopped:" >&2; tail -5 "$WORK/log" >&2; exit 1; }
    sleep 0.05
  done
  echo "not ready after 120 s" >&2
  exit 1
}

# node_stop: stops the node with SIGTERM and waits for it.
node_stop() {
  kill "$NODE_PID"
  wait "$NODE_PID" 2>/dev/null || true
  NODE_PID=
}

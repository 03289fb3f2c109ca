#!/usr/bin/env bash
# A qrlaunch fleet on this machine's loopback: one PostgreSQL cluster in a
# temporary directory and three nodes that follow it. It prints what to try,
# then waits; Ctrl-C (or SIGTERM) stops the nodes and the cluster and
# removes the directory.
#
#   bash deploy/fleet.sh [qrlaunch flags for every node...]
#
# Knobs (environment): NODES (3), PG_PORT (15432), FIRST_PORT (18080: node i
# scans on FIRST_PORT+10*i, its admin API on +1, its metrics on +2),
# TABLE (examples/table.ndjson, imported once through the first node),
# QRLAUNCH (a binary to run instead of building one; otherwise it is built
# in release mode under CARGO_TARGET_DIR, default ./target).
#
# Sourced with FLEET_LIB_ONLY=1 it only defines the functions, for the
# fleet benchmark (loadtest/fleet.sh).
set -euo pipefail

FLEET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Debian's PostgreSQL server programs (initdb, pg_ctl), installed if missing.
fleet_pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    echo "installing postgresql" >&2
    apt-get update -qq >/dev/null
    # Without starting Debian's own cluster.
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    rm -f /usr/sbin/policy-rc.d
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  echo "$bin"
}

# Runs a PostgreSQL program, as the postgres user when we are root
# (PostgreSQL refuses to run as root).
# FLEET_PG_CORES pins them (and so the server and every backend it forks)
# to those cores.
fleet_pg() {
  local program=$1
  shift
  local pin=()
  [ -n "${FLEET_PG_CORES:-}" ] && pin=(taskset -c "$FLEET_PG_CORES")
  if [ "$(id -u)" = 0 ]; then
    "${pin[@]}" runuser -u postgres -- "$FLEET_PG_BIN/$program" "$@"
  else
    "${pin[@]}" "$FLEET_PG_BIN/$program" "$@"
  fi
}

# fleet_pg_start DIR PORT: a new cluster in DIR/pg, trusting loopback,
# listening on 127.0.0.1:PORT only, with a database named qrlaunch.
fleet_pg_start() {
  local dir=$1 port=$2
  FLEET_PG_BIN=$(fleet_pg_bin)
  FLEET_PG_DIR=$dir/pg
  [ "$(id -u)" = 0 ] && chmod 777 "$dir"
  fleet_pg initdb -U postgres --auth=trust -E UTF8 --no-sync -D "$FLEET_PG_DIR" >/dev/null
  fleet_pg pg_ctl -D "$FLEET_PG_DIR" -l "$dir/pg.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  fleet_pg psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAtc "CREATE DATABASE qrlaunch" >/dev/null
  FLEET_STORE="postgres://postgres@127.0.0.1:$port/qrlaunch"
}

fleet_pg_stop() {
  [ -n "${FLEET_PG_DIR:-}" ] && fleet_pg pg_ctl -D "$FLEET_PG_DIR" -m fast -w stop >/dev/null 2>&1 || true
}

FLEET_PIDS=()

# fleet_node_start NAME SCAN_PORT [extra qrlaunch flags...]: a node on
# SCAN_PORT (admin +1, metrics +2) with its own data directory under
# FLEET_DIR, the shared store and the shared token; waits until it is ready.
# FLEET_CORES pins it (taskset -c).
fleet_node_start() {
  local name=$1 port=$2
  shift 2
  local pin=()
  [ -n "${FLEET_CORES:-}" ] && pin=(taskset -c "$FLEET_CORES")
  "${pin[@]}" "${QRLAUNCH:-${CARGO_TARGET_DIR:-$FLEET_ROOT/target}/release/qrlaunch}" \
    --store "$FLEET_STORE" --data "$FLEET_DIR/$name" \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1))" --metrics-listen "127.0.0.1:$((port + 2))" \
    --admin-token-file "$FLEET_DIR/admin-token" --log "${FLEET_LOG:-info}" "$@" \
    >"$FLEET_DIR/$name.out" 2>"$FLEET_DIR/$name.log" &
  FLEET_PIDS+=($!)
  fleet_wait_ready "http://127.0.0.1:$port/readyz" "$name"
}

fleet_wait_ready() { # url name
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not become ready; its log:" >&2
  tail -n 20 "$FLEET_DIR/$2.log" >&2
  return 1
}

fleet_stop() {
  for pid in "${FLEET_PIDS[@]}" ${FLEET_SLEEP:-}; do kill "$pid" 2>/dev/null || true; done
  for pid in "${FLEET_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  FLEET_PIDS=()
  fleet_pg_stop
  [ -n "${FLEET_DIR:-}" ] && rm -rf "$FLEET_DIR"
}

# fleet_init: the directory, the shared admin token and the cluster.
fleet_init() {
  FLEET_DIR=$(mktemp -d /tmp/qrlaunch-fleet.XXXXXX)
  head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$FLEET_DIR/admin-token"
  chmod 600 "$FLEET_DIR/admin-token"
  fleet_pg_start "$FLEET_DIR" "${PG_PORT:-15432}"
}

if [ -n "${FLEET_LIB_ONLY:-}" ]; then
  return 0 2>/dev/null || exit 0
fi

NODES=${NODES:-3}
FIRST_PORT=${FIRST_PORT:-18080}
TABLE=${TABLE:-$FLEET_ROOT/examples/table.ndjson}
cd "$FLEET_ROOT"
if [ -z "${QRLAUNCH:-}" ]; then
  echo "building qrlaunch (release)" >&2
  cargo build --release --bin qrlaunch --quiet
  QRLAUNCH=${CARGO_TARGET_DIR:-$FLEET_ROOT/target}/release/qrlaunch
fi
trap fleet_stop EXIT
trap 'exit 0' INT TERM
fleet_init
echo "PostgreSQL: $FLEET_STORE" >&2
for i in $(seq 0 $((NODES - 1))); do
  extra=()
  # The first node seeds a new database with the table; the others find it
  # initialised and only follow.
  [ "$i" = 0 ] && extra=(--table "$TABLE")
  fleet_node_start "node$i" $((FIRST_PORT + 10 * i)) "${extra[@]}" "$@"
done

A=$FIRST_PORT
B=$((FIRST_PORT + 10))
Q=$QRLAUNCH
cat <<EOF

A fleet of $NODES nodes on one PostgreSQL is running (data in $FLEET_DIR).
node i: scans on 127.0.0.1:$FIRST_PORT+10*i, admin API +1, metrics +2.

Try, in another terminal (the token is shared by every node):

  export QRLAUNCH_ADMIN_TOKEN_FILE=$FLEET_DIR/admin-token
  curl -i http://127.0.0.1:$A/spring24                         # a scan on node 0
  $Q code add --code fleet1 --appid wx1234567890abcdef --path pages/index/index --admin-url http://127.0.0.1:$((A + 1))
  curl -i http://127.0.0.1:$B/fleet1                           # node 1 answers it at once
  curl -s http://127.0.0.1:$B/readyz                           # its position and lag
  $Q code rm fleet1 --admin-url http://127.0.0.1:$((B + 1))
  curl -i http://127.0.0.1:$A/fleet1                           # 404 on node 0 too
  curl -s http://127.0.0.1:$((A + 2))/metrics | grep qrlaunch_table_position

Ctrl-C stops the nodes and PostgreSQL and removes $FLEET_DIR.
EOF
# Waits in `wait`, which a signal interrupts (a foreground sleep would hold
# the traps back until it ends).
sleep infinity &
FLEET_SLEEP=$!
wait "$FLEET_SLEEP" || true

# Helpers shared by the load scripts (stall.sh, writes.sh, compare-nginx.sh).
# Sourced, not run.

# gen_sched: sets GEN, the command prefix (an array) that runs the load
# generator, from GEN_SCHED: fifo (the real-time class, `chrt -f 20`), nice
# (nice -19) or none. Only root may raise a priority (`nice` would warn and
# run at 0 anyway), so for anyone else it is none.
gen_sched() {
  [ "$(id -u)" = 0 ] || GEN_SCHED=none
  case $GEN_SCHED in
    fifo) GEN=(chrt -f 20) ;;
    nice) GEN=(nice -n -19) ;;
    none) GEN=() ;;
    *) echo "GEN_SCHED must be fifo, nice or none, not $GEN_SCHED" >&2; exit 2 ;;
  esac
}

# sched_record_check: stops the script when SCHED_RECORD is set and perf
# is not installed, before any run rather than after the first.
sched_record_check() {
  if [ -n "${SCHED_RECORD:-}" ] && ! command -v perf >/dev/null; then
    echo "SCHED_RECORD=1 needs perf (Debian: apt-get install linux-perf)" >&2
    exit 2
  fi
}

# nginx_map_settings MAP: the `http` settings of an nginx that answers from
# MAP (`qrlaunch-loadtest gen-nginx-map`: `map $uri $qr_target`), a million
# entries big.
nginx_map_settings() {
  cat <<NGINX
    access_log off;
    keepalive_requests 100000000;
    map_hash_max_size 4194304;
    map_hash_bucket_size 128;
    include $1;
NGINX
}

# nginx_map_answer: the `location` that answers as qrlaunch does: a 302 to
# the map's target with the same Cache-Control, else 404.
nginx_map_answer() {
  cat <<'NGINX'
        location / {
            if ($qr_target) {
                add_header Cache-Control "public, max-age=60";
                return 302 $qr_target;
            }
            return 404;
        }
NGINX
}

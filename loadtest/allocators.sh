#!/usr/bin/env bash
# The system allocator against jemalloc and mimalloc, side by side: the
# whole of loadtest/stall.sh (scans idle and during background work,
# saturated throughput, RSS after a first seed, after ten rebuilds and
# after a restart, time to ready) once per allocator, then one table.
#
#   bash loadtest/allocators.sh
#
# Knobs: those of stall.sh (RATE, DURATION), and ALLOCATORS (the cargo
# features to compare; "system" is none).
set -euo pipefail
cd "$(dirname "$0")/.."
ALLOCATORS=${ALLOCATORS:-system jemalloc mimalloc}
OUT=$(mktemp -d /tmp/qrlaunch-allocators.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
for allocator in $ALLOCATORS; do
  features=$allocator
  [ "$allocator" = system ] && features=
  printf '\n== %s ==\n' "$allocator" >&2
  FEATURES=$features bash loadtest/stall.sh | tee "$OUT/$allocator.txt"
done
python3 - "$OUT" $ALLOCATORS <<'PY'
import re, sys
out, names = sys.argv[1], sys.argv[2:]
def rows(name):
    table = {}
    for line in open(f"{out}/{name}.txt"):
        m = re.match(r"^(.{44}) +(\d+) +(\d+) +(\d+) +(\d+) +(\d+)", line)
        if m:
            table[m.group(1).strip()] = dict(rps=int(m.group(2)), p99=int(m.group(4)), p999=int(m.group(5)), max=int(m.group(6)))
        m = re.match(r"^(.*): (.*)$", line)
        if m and ("RSS" in m.group(2) or " s" in m.group(2)):
            table[m.group(1)] = m.group(2)
    return table
tables = {n: rows(n) for n in names}
print("\n" + " | ".join(["what"] + names))
keys = []
for t in tables.values():
    for k in t:
        if k not in keys:
            keys.append(k)
for k in keys:
    cells = []
    for n in names:
        v = tables[n].get(k, "")
        if isinstance(v, dict):
            v = f"{v['rps']} req/s" if "saturated" in k else f"p99 {v['p99']} µs, p99.9 {v['p999']}, max {v['max']}"
        cells.append(str(v))
    print(" | ".join([k] + cells))
PY

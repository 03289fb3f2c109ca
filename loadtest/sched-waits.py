#!/usr/bin/env python3
"""Where a node's scan thread waited for its core, from a `perf sched record`.

    python3 loadtest/sched-waits.py PERF_DATA PID LABEL

Reads `perf sched timehist` of PERF_DATA and prints one JSON line: the
scheduling delay of PID's scan thread (`qrlaunch-scan`: the time from its
wake-up to running) at p99, p99.9 and max, how many of its waits were over
1 ms, and which tasks ran on its core during those waits, by total time
(longest first). A wait during which the core ran `<idle>` for more than
half of it is the virtual machine's: the thread was runnable and its core
had nothing else to run, so the guest's CPU itself was not running (the
host had not scheduled it); those are counted apart, with the longest.
`loadtest/stall.sh` runs it for each run when SCHED_RECORD=1.
"""
import collections
import json
import subprocess
import sys


def quantile(values, q):
    return values[min(len(values) - 1, int(len(values) * q))] if values else 0.0


def main():
    data, pid, label = sys.argv[1], sys.argv[2], sys.argv[3]
    out = subprocess.run(
        ["perf", "sched", "timehist", "-i", data], capture_output=True, text=True, check=True
    ).stdout
    # time [cpu] task wait-time sch-delay run-time (ms), one line per
    # switch-out: the task ran for run-time up to time.
    runs = collections.defaultdict(list)
    scan = f"/{pid}]"
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 6 or not parts[1].startswith("["):
            continue
        try:
            at, delay, ran = float(parts[0]), float(parts[4]), float(parts[5])
        except ValueError:
            continue
        runs[parts[1]].append((at, parts[2], delay, ran))
    delays, waits, behind = [], 0, collections.Counter()
    on_idle_core = []
    for lines in runs.values():
        for i, (at, task, delay, ran) in enumerate(lines):
            if not (task.startswith("qrlaunch-scan[") and task.endswith(scan)):
                continue
            delays.append(delay)
            if delay <= 1.0:
                continue
            waits += 1
            # The wait: from the wake-up to the switch-in, in seconds.
            start = at - (ran + delay) / 1000
            end = at - ran / 1000
            j = i - 1
            idle = 0.0
            while j >= 0 and lines[j][0] > start:
                other_at, other, _, other_ran = lines[j]
                overlap = min(end, other_at) - max(start, other_at - other_ran / 1000)
                if overlap > 0:
                    behind[other.split("[")[0]] += overlap * 1000
                    if other.startswith("<idle>"):
                        idle += overlap * 1000
                j -= 1
            if idle > delay / 2:
                on_idle_core.append(delay)
    if not delays:
        sys.exit(f"no qrlaunch-scan thread of pid {pid} in {data}")
    delays.sort()
    print(json.dumps({
        "label": f"scan thread's scheduling delay, {label}",
        "sched_delay_p99_ms": round(quantile(delays, 0.99), 3),
        "sched_delay_p999_ms": round(quantile(delays, 0.999), 3),
        "sched_delay_max_ms": round(delays[-1], 3),
        "waits_over_1ms": waits,
        "waits_on_idle_core": len(on_idle_core),
        "longest_wait_on_idle_core_ms": round(max(on_idle_core, default=0.0), 3),
        "ran_meanwhile_ms": {task: round(ms, 1) for task, ms in behind.most_common()},
    }))


if __name__ == "__main__":
    main()

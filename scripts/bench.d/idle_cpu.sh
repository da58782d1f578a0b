#!/bin/bash
# idle_cpu.sh SOCKMETER N: the shipper's CPU per second while a process holds N idle sockets.
#
# Runs `SOCKMETER run -- target/bench/w_rss N 14000` (N connected UDP sockets, one datagram
# each, then held for 14 s), waits 5 s for the announcements, and reads the shipper's CPU time
# (/proc/<pid>/schedstat, ns) over the next 6 s, and its peak RSS. `scripts/bench` builds
# target/bench/w_rss. This machine's hard limit on open files caps N (ulimit -Hn).
# Compare builds by running it for each, interleaved:
#   for i in 1 2; do scripts/bench.d/idle_cpu.sh /tmp/before/sockmeter 19900; scripts/bench.d/idle_cpu.sh target/release/sockmeter 19900; done
set -euo pipefail
SM=$1
N=$2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mktemp -d)
"$SM" run --json "$OUT/report.json" -- "$ROOT/target/bench/w_rss" "$N" 14000 > /dev/null 2>&1 &
RUN=$!
sleep 5
SH=$(pgrep -f "__ship.*w_rss" | head -1)
a=$(awk '{print $1}' "/proc/$SH/schedstat"); t0=$(date +%s%N)
sleep 6
b=$(awk '{print $1}' "/proc/$SH/schedstat"); t1=$(date +%s%N)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SH/status")
wait "$RUN"
echo "$SM N=$N shipper_cpu_ms_per_s=$(echo "scale=3; ($b-$a)*1000/($t1-$t0)" | bc) shipper_hwm_kib=$hwm"
rm -rf "$OUT"

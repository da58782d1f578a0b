#!/bin/bash
# scale.sh SOCKMETER N [PROCS]: what N idle sockets cost the shipper and the reporter.
#
# Runs `SOCKMETER run -- target/bench/w_rss N 16000 PROCS`: PROCS forked children (default 1:
# the process itself) holding N connected UDP sockets between them, one datagram each, held
# for 16 s, all served by one shipper. After 7 s (the announcements), it reads over 5 s the
# shipper's CPU time (/proc/<pid>/schedstat) and then the peak RSS of the shipper and of the
# reporter (`sockmeter run` itself), and, at the end, the hosts' own peak RSS (their RESULT
# lines) and whether the report counted every datagram. One process may hold at most
# `ulimit -Hn` fds: past that, use PROCS > 1. `scripts/bench` builds target/bench/w_rss.
#   for n in 0 10000 100000; do scripts/bench.d/scale.sh target/release/sockmeter $n 6; done
# Two builds side by side (interleaved, as any comparison here should be):
#   for i in 1 2; do for sm in /tmp/before/sockmeter target/release/sockmeter; do scripts/bench.d/scale.sh $sm 19900; done; done
set -euo pipefail
SM=$1
N=$2
PROCS=${3:-1}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$SM" run --quiet --json "$OUT/report.json" -- "$ROOT/target/bench/w_rss" "$N" 16000 "$PROCS" > "$OUT/hosts" 2>"$OUT/err" &
RUN=$!
sleep 7
SH=$(pgrep -f "__ship.*w_rss" | head -1)
a=$(awk '{print $1}' "/proc/$SH/schedstat"); t0=$(date +%s%N)
sleep 5
b=$(awk '{print $1}' "/proc/$SH/schedstat"); t1=$(date +%s%N)
sh_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$SH/status")
# Its own memory (RssAnon) apart from the hosts' regions it maps (RssShmem, the hosts' pages).
sh_anon=$(awk '/RssAnon/ {print $2}' "/proc/$SH/status")
rep_rss=$(awk '/VmRSS/ {print $2}' "/proc/$RUN/status")
wait "$RUN" || { cat "$OUT/err" >&2; exit 1; }
python3 - "$OUT/report.json" "$OUT/hosts" "$SM" "$N" "$PROCS" \
    "$(echo "scale=3; ($b-$a)*1000/($t1-$t0)" | bc)" "$sh_hwm" "$sh_anon" "$rep_rss" <<'PY'
import json, re, sys
report, hosts, sm, n, procs, cpu, sh_hwm, sh_anon, rep_rss = sys.argv[1:]
r = json.load(open(report))
tx = sum(p["totals"]["tx_bytes"] for p in r["processes"])
sockets = sum(len(p.get("sockets", [])) for p in r["processes"])
hwm = [int(m) for m in re.findall(r"hwm_kib=(\d+)", open(hosts).read())]
want = int(n) + (1 if int(procs) > 1 else 0)
print("%s N=%s procs=%s shipper_cpu_ms_per_s=%s shipper_hwm_kib=%s shipper_anon_kib=%s reporter_rss_kib=%s "
      "host_hwm_kib_max=%s counted_tx=%d/%d sockets_in_report=%d" % (
          sm, n, procs, cpu, sh_hwm, sh_anon, rep_rss, max(hwm) if hwm else 0, tx, want, sockets))
sys.exit(0 if tx == want else 1)
PY

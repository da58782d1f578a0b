#!/usr/bin/env python3
"""Compare the system calls of a workload's main thread across strace runs.

Used by syscalls-same.sh.  Each run is a directory of `strace -f -ff -o DIR/t` files
(one file per thread).  The workload's main thread is the file in which the workload
binary was execve()d successfully; the other files (the reporter process and its
threads, the shim's reporter thread, `env`) are listed but not compared.  Within the
main thread, the calls between the marker lines
    access("/nonexistent/sockmeter-bench-marker/<phase>-begin", ...) ... -end
are counted per system call name and compared with the baseline run (the first).

  strace_counts.py WORKLOAD_PATH BASE_LABEL=DIR [LABEL=DIR ...] [--strict]

Exit status: 0 identical; 1 a difference that fails (any difference in the `data`
phase; in the `lifecycle` phase a difference in a data-path call, or any difference
with --strict); 2 a run could not be read."""

import collections
import os
import re
import sys

MARK = re.compile(r'^access\("/nonexistent/sockmeter-bench-marker/([a-z]+)-(begin|end)"')
CALL = re.compile(r"^([a-z_][a-z0-9_]*)\(")
DATA_PATH = {
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "preadv2", "pwritev2", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
    "recvmmsg", "sendfile", "splice", "recv", "send",
}


def load(run_dir, workload):
    """Return (phases: {phase: Counter}, main_file, others: {file: Counter})."""
    exe = 'execve("%s"' % workload
    main = None
    per_file = {}
    for name in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, name)
        with open(path, errors="replace") as f:
            lines = f.read().splitlines()
        per_file[name] = lines
        if main is None and any(l.startswith(exe) and l.rstrip().endswith("= 0") for l in lines):
            main = name
    if main is None:
        raise SystemExit("strace_counts: no thread in %s execve()d %s" % (run_dir, workload))
    phases = {}
    current = None
    for line in per_file[main]:
        m = MARK.match(line)
        if m:
            current = m.group(1) if m.group(2) == "begin" else None
            phases.setdefault(m.group(1), collections.Counter())
            continue
        if current is None:
            continue
        c = CALL.match(line)
        if c:
            phases[current][c.group(1)] += 1
    others = {}
    for name, lines in per_file.items():
        if name == main:
            continue
        cnt = collections.Counter()
        for line in lines:
            c = CALL.match(line)
            if c:
                cnt[c.group(1)] += 1
        others[name] = cnt
    return phases, main, others


def main(argv):
    strict = "--strict" in argv
    args = [a for a in argv if a != "--strict"]
    if len(args) < 3:
        print(__doc__)
        return 2
    workload = args[0]
    runs = []
    for spec in args[1:]:
        label, _, d = spec.partition("=")
        runs.append((label, load(d, workload)))
    base_label, (base, _, _) = runs[0]
    if set(base) != {"data", "lifecycle"}:
        print("strace_counts: markers missing in the %s run (phases found: %s)" % (base_label, sorted(base)))
        return 2
    failed = noted = False
    for phase in ("data", "lifecycle"):
        print("phase %-9s %s: %d calls in the main thread (%s)" % (
            phase, base_label, sum(base[phase].values()),
            ", ".join("%s %d" % kv for kv in sorted(base[phase].items()))))
    for label, (phases, main_file, others) in runs[1:]:
        side = ", ".join("%s: %d calls" % (n, sum(c.values())) for n, c in sorted(others.items()))
        print("%s: main thread %s; other threads/processes (not compared): %s" % (label, main_file, side or "none"))
        for phase in ("data", "lifecycle"):
            got = phases.get(phase)
            if got is None:
                print("  %s/%s: markers missing" % (label, phase))
                failed = True
                continue
            want = base[phase]
            diffs = [(n, want.get(n, 0), got.get(n, 0)) for n in sorted(set(want) | set(got))
                     if want.get(n, 0) != got.get(n, 0)]
            if not diffs:
                print("  %-9s identical to %s (%d calls)" % (phase, base_label, sum(got.values())))
                continue
            for n, w, g in diffs:
                fatal = strict or phase == "data" or n in DATA_PATH
                failed |= fatal
                noted |= not fatal
                print("  %-9s %-16s %s %6d  %s %6d  (%+d)%s" % (
                    phase, n, base_label, w, label, g, g - w,
                    "  FAIL" if fatal else "  note: per-socket call, not on the send/recv path"))
    if failed:
        print("syscall counts DIFFER")
    elif noted:
        print("syscall counts identical on the send/recv path (per-socket differences noted above)")
    else:
        print("syscall counts identical")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

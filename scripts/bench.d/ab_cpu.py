#!/usr/bin/env python3
"""scripts/bench.d/ab_cpu.py -- two sockmeter builds side by side, by CPU time as well as wall time.

On a machine shared with other work, wall-clock rows swing by tens of percent (scripts/bench's
`noise` column). This runs one workload with no preload, under build A and under build B, in
rotating order for ROUNDS rounds, and prints the medians of wall time (the workload's own
figure) and of CPU time (user + system of the workload and everything it started: shipper,
reporter), each as a ratio to no preload, and the median of the per-round ratio B/A.

  scripts/bench.d/ab_cpu.py WORKLOAD COUNT ROUNDS MODE BASE_DIR NEW_DIR
    WORKLOAD  short | threads | plugin-threads | dlopen | forks | forks:inherit
              (binaries from `scripts/bench`)
    MODE      run (sockmeter run --json) | preload (LD_PRELOAD of the shim alone)
    *_DIR     a target/release directory with sockmeter and libsockmeter_shim.so
"""
import subprocess, statistics, sys, os, resource
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B = os.path.join(ROOT, "target", "bench") + "/"
env = {k: v for k, v in os.environ.items() if not k.startswith("SOCKMETER") and k != "LD_PRELOAD"}
peer = subprocess.Popen([B + "peer"], stdout=subprocess.PIPE, text=True, env=env)
port = peer.stdout.readline().split()[-1]
if len(sys.argv) != 7:
    sys.exit(__doc__)
wl, n, rounds, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
builds = {"base": sys.argv[5] + "/", "mine": sys.argv[6] + "/"}
def argv():
    return {"short": [B + "w_short", port, n], "threads": [B + "w_threads", "threads", n],
            "plugin-threads": [B + "w_threads", "plugin-threads", n, B + "libw_tplugin.so"],
            "dlopen": [B + "w_threads", "dlopen", n, B + "libw_tplugin.so"],
            "forks": [B + "w_forks", port, n], "forks:inherit": [B + "w_forks", port, n, "inherit"]}[wl]
def one(cond):
    e = dict(env)
    cmd = argv()
    if cond != "none":
        if mode == "run": cmd = [builds[cond] + "sockmeter", "run", "--json", "/tmp/ab.json", "--"] + cmd
        else: e["LD_PRELOAD"] = builds[cond] + "libsockmeter_shim.so"
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, env=e, capture_output=True, text=True).stdout
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1e6 / int(n)
    line = [l for l in out.splitlines() if l.startswith("RESULT")][0]
    kv = dict(p.split("=", 1) for p in line.split()[2:] if "=" in p)
    return float(list(kv.values())[0]), cpu
res = {"none": [], "base": [], "mine": []}
order = ["none", "base", "mine"]
for r in range(rounds):
    for c in order[r % 3:] + order[:r % 3]:
        res[c].append(one(c))
med = lambda xs: statistics.median(xs)
for i, what in ((0, "wall"), (1, "cpu")):
    nn = [x[i] for x in res["none"]]; bb = [x[i] for x in res["base"]]; mm = [x[i] for x in res["mine"]]
    print("%-15s %-4s %-5s none %.2f  base %.2f (%.3fx)  mine %.2f (%.3fx)  mine/base %.3fx [%.3f..%.3f] us/op" % (
        wl, mode, what, med(nn), med(bb), med([b / a for a, b in zip(nn, bb)]), med(mm), med([m / a for a, m in zip(nn, mm)]),
        med([m / b for b, m in zip(bb, mm)]), min(m / b for b, m in zip(bb, mm)), max(m / b for b, m in zip(bb, mm))))
peer.terminate()

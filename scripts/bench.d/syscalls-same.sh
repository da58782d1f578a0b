#!/usr/bin/env bash
# Proof that the sockmeter shim adds no system call on the send/recv path.
#
# Runs the deterministic workload w_syscalls.c under `strace -f -ff` three ways
#   none     no preload
#   preload  LD_PRELOAD=libsockmeter_shim.so, no reporter (SOCKMETER_* unset)
#   run      sockmeter run -- w_syscalls (the reporter connected, as users run it)
# and compares the system calls of the workload's main thread, phase by phase
# (strace_counts.py).  The shim's reporter thread and the reporter process are other
# threads/processes: listed, not compared.  Because strace sees every system call,
# "identical" also means no brk/mmap (heap growth) and no futex (a contended lock)
# in the main thread on that path.
#
# usage: scripts/bench.d/syscalls-same.sh [--shim PATH] [--sockmeter PATH] [--no-run]
#                                         [--strict] [--keep] [--self-test]
#   --strict     also fail on per-socket differences (socket/connect/accept/close...)
#   --self-test  check the checker: the floor interposer must pass, bad.c must fail
#   env SOCKMETER_SHIM / SOCKMETER_BIN locate the binaries (default target/release/)
# exit status: 0 identical, 1 different, 2 error, 77 skipped (shim or strace missing)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD_DIR:-$root/target/bench}
shim=${SOCKMETER_SHIM:-$root/target/release/libsockmeter_shim.so}
cli=${SOCKMETER_BIN:-$root/target/release/sockmeter}
do_run=1 strict="" keep=0 self_test=0
while [ $# -gt 0 ]; do
    case "$1" in
        --shim) shim=$2; shift 2 ;;
        --sockmeter) cli=$2; shift 2 ;;
        --no-run) do_run=0; shift ;;
        --strict) strict=--strict; shift ;;
        --keep) keep=1; shift ;;
        --self-test) self_test=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "syscalls-same: unknown argument $1" >&2; exit 2 ;;
    esac
done

command -v strace >/dev/null || { echo "syscalls-same: SKIP: strace is not installed (apt-get install strace)"; exit 77; }
mkdir -p "$build"
cc -O2 -Wall -o "$build/w_syscalls" "$here/w_syscalls.c"
w=$build/w_syscalls
tmp=$(mktemp -d /tmp/sockmeter-syscalls.XXXXXX)
cleanup() { if [ "$keep" = 1 ]; then echo "traces kept in $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

# A clean environment: nothing of sockmeter's, no preload.
clean_env=(env -u LD_PRELOAD -u SOCKMETER_SOCKET -u SOCKMETER_REPORT -u SOCKMETER_INTERVAL
           -u SOCKMETER_ATTRIBUTE -u SOCKMETER_UNIX -u SOCKMETER_DISABLE)

trace() { # trace LABEL EXPECTED_INTERPOSER CMD...
    local label=$1 expect=$2; shift 2
    mkdir -p "$tmp/$label"
    if ! "${clean_env[@]}" strace -f -ff -qq -o "$tmp/$label/t" "$@" >"$tmp/$label.out" 2>"$tmp/$label.err"; then
        echo "syscalls-same: the $label run failed:"; cat "$tmp/$label.err" "$tmp/$label.out"; exit 2
    fi
    local got
    got=$(sed -n 's/.*interposer=\([^ ]*\).*/\1/p' "$tmp/$label.out")
    if [ "$got" != "$expect" ]; then
        echo "syscalls-same: in the $label run recv() came from '${got:-?}', expected $expect"; exit 2
    fi
}

if [ "$self_test" = 1 ]; then
    cc -O2 -shared -fPIC -o "$build/libfloor.so" "$here/floor.c" -ldl
    cc -O2 -shared -fPIC -o "$build/libbad.so" "$here/bad.c" -ldl
    trace none libc.so.6 "$w"
    trace floor libfloor.so env LD_PRELOAD="$build/libfloor.so" "$w"
    trace bad libbad.so env LD_PRELOAD="$build/libbad.so" "$w"
    ok=0
    python3 "$here/strace_counts.py" "$w" none="$tmp/none" floor="$tmp/floor" || ok=1
    if python3 "$here/strace_counts.py" "$w" none="$tmp/none" bad="$tmp/bad" >"$tmp/bad.cmp"; then ok=1; fi
    sed -n '/bad:/,$p' "$tmp/bad.cmp"
    if [ "$ok" = 0 ]; then echo "self-test passed: the floor is identical, the bad interposer is caught"; exit 0; fi
    echo "self-test FAILED"; exit 1
fi

if [ ! -f "$shim" ]; then
    echo "syscalls-same: SKIP: sockmeter shim not built ($shim); cargo build --release -p sockmeter-shim"
    exit 77
fi
if ! nm -D --defined-only "$shim" 2>/dev/null | grep -qw recv; then
    echo "syscalls-same: SKIP: $shim does not define recv(): nothing is interposed yet"
    exit 77
fi
shim=$(cd "$(dirname "$shim")" && pwd)/$(basename "$shim")
shim_name=$(basename "$shim")

trace none libc.so.6 "$w"
trace preload "$shim_name" env LD_PRELOAD="$shim" "$w"
runs=(none="$tmp/none" preload="$tmp/preload")
if [ "$do_run" = 1 ]; then
    if [ -x "$cli" ]; then
        trace run "$shim_name" "$cli" run -- "$w"
        runs+=(run="$tmp/run")
    else
        echo "syscalls-same: sockmeter CLI not built ($cli): the 'run' condition is skipped"
    fi
fi
exec python3 "$here/strace_counts.py" "$w" "${runs[@]}" $strict

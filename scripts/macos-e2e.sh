#!/usr/bin/env bash
# sockmeter on a Mac, end to end: builds natively, compiles a small CoreFoundation host that
# talks through a CFSocket on its run loop (a data callback and CFSocketSendData:
# tests/c/cf_client.c) and a plain BSD client, runs each under `sockmeter run` against an echo
# peer on loopback that is not metered (tests/peers/tcp_peer.py), and checks the counts
# exactly: each socket's bytes are the peer's, the CFSocket says origin "cfsocket" and the BSD
# socket "bsd", and CoreFoundation's own wake-up sockets are not listed.
#
# Not run by CI (CI has no Mac); it has not been run by the project yet: see README, "macOS".
# Needs Xcode's command line tools (clang, CoreFoundation's headers) and python3.
#
# usage: scripts/macos-e2e.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -s)" = Darwin ] || { echo "scripts/macos-e2e.sh: this is for macOS (see scripts/build-macos elsewhere)" >&2; exit 2; }
cargo build --release -p sockmeter-shim -p sockmeter-cli
SM=$PWD/target/release/sockmeter
work=$(mktemp -d "${TMPDIR:-/tmp}/sockmeter-macos-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -Wall -Werror -o "$work/cf_client" tests/c/cf_client.c -framework CoreFoundation
cat > "$work/bsd_client.c" <<'C'
/* bsd_client PORT MSGS SIZE: plain send/recv to an echo peer, each message echoed in full. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 4) return 2;
    int msgs = atoi(argv[2]), size = atoi(argv[3]);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)atoi(argv[1]));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) return 1;
    char *buf = malloc((size_t)size);
    long got = 0;
    for (int m = 0; m < msgs; m++) {
        memset(buf, 'a' + m % 26, (size_t)size);
        if (send(fd, buf, (size_t)size, 0) != size) return 1;
        for (int have = 0; have < size;) {
            ssize_t n = recv(fd, buf, (size_t)(size - have), 0);
            if (n <= 0) return 1;
            have += (int)n;
            got += n;
        }
    }
    close(fd);
    printf("received %ld\n", got);
    return got == (long)msgs * size ? 0 : 1;
}
C
cc -O2 -Wall -Werror -o "$work/bsd_client" "$work/bsd_client.c"

# One exchange: start an echo peer, run CMD under sockmeter, check the report against the peer.
# usage: check NAME ORIGIN CMD...   (CMD gets the peer's port as its first argument)
check() {
  local name=$1 origin=$2
  shift 2
  python3 tests/peers/tcp_peer.py --mode echo > "$work/$name.peer" &
  local peer=$!
  for _ in $(seq 100); do [ -s "$work/$name.peer" ] && break; sleep 0.05; done
  local port
  port=$(head -1 "$work/$name.peer")
  "$SM" run --json "$work/$name.json" --unix -- "$1" "$port" "${@:2}" 2> "$work/$name.err" || {
    cat "$work/$name.err" >&2; echo "FAIL $name: the command failed" >&2; exit 1; }
  wait "$peer"
  python3 - "$work/$name.json" "$work/$name.peer" "$origin" "$port" "$name" <<'PY'
import json, sys
report, peer, origin, port, name = sys.argv[1:]
r = json.load(open(report))
verdict = json.loads(open(peer).read().splitlines()[-1])
procs = [p for p in r["processes"] if p["sockets"]]
assert len(procs) == 1, f"{name}: one metered process, got {len(procs)}"
socks = procs[0]["sockets"]
assert len(socks) == 1, f"{name}: exactly the program's socket (no CoreFoundation wake-up socket): {socks}"
s = socks[0]
assert s.get("origin") == origin, f"{name}: origin {s.get('origin')}, expected {origin}"
assert s["peer"] == f"127.0.0.1:{port}", f"{name}: peer {s['peer']}"
assert (s["tx_bytes"], s["rx_bytes"]) == (verdict["rx"], verdict["tx"]), \
    f"{name}: counted tx {s['tx_bytes']} rx {s['rx_bytes']}, the peer saw rx {verdict['rx']} tx {verdict['tx']}"
print(f"ok {name}: {s['tx_bytes']} B out, {s['rx_bytes']} B in, origin {origin}, exactly the peer's")
PY
}

check cf_create cfsocket "$work/cf_client" 25 1500 create
check cf_signature cfsocket "$work/cf_client" 25 1500 signature
check bsd bsd "$work/bsd_client" 25 1500
echo "scripts/macos-e2e.sh: all exact"

"""Metered TCP client (runs under the shim).

    tcp_client.py [--family 4|6] --port P [--sizes A,B,...] [--stdin] [--letter X] [--peek N]

Connects to 127.0.0.1 (or ::1):P, sends one sendall() of X * size per entry of --sizes (or
everything read from stdin with --stdin), half-closes, then reads the reply until EOF.
With --peek N it first looks at the reply with recv(N, MSG_PEEK) (twice) before reading it.
Prints its own account: {"pid", "local", "peer", "tx", "rx", "sendalls", "peeked"}.
"""

import argparse
import os
import socket
import sys

from peerlib import TIMEOUT, addr_str, af, host, recv_all, say


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", type=int, default=4)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sizes", default="")
    ap.add_argument("--stdin", action="store_true")
    ap.add_argument("--letter", default="c")
    ap.add_argument("--peek", type=int, default=0)
    a = ap.parse_args()

    if a.stdin:
        chunks = [sys.stdin.buffer.read()]
    else:
        chunks = [a.letter.encode() * int(n) for n in a.sizes.split(",") if n]

    s = socket.socket(af(a.family), socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect((host(a.family), a.port))
    tx = 0
    for c in chunks:
        s.sendall(c)
        tx += len(c)
    s.shutdown(socket.SHUT_WR)
    peeked = []
    for _ in range(2 if a.peek else 0):
        peeked.append(len(s.recv(a.peek, socket.MSG_PEEK)))
    rx = recv_all(s)
    out = {
        "pid": os.getpid(),
        "local": addr_str(s.getsockname()),
        "peer": addr_str((host(a.family), a.port)),
        "tx": tx,
        "rx": rx,
        "sendalls": len(chunks),
        "peeked": peeked,
    }
    s.close()
    say(out)


if __name__ == "__main__":
    main()

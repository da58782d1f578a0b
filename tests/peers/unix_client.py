"""Metered client with Unix-domain and TCP traffic (runs under the shim).

    unix_client.py --path PATH --unix-size N --tcp-port P --tcp-size M --pair-sizes A,B

1. AF_UNIX stream: connects to PATH (unix_peer.py), sends N bytes, half-closes, reads the
   answer until EOF.
2. TCP: connects to 127.0.0.1:P (tcp_peer.py, reply mode), sends M bytes, half-closes, reads
   the answer until EOF.
3. socketpair(AF_UNIX, SOCK_STREAM): end a sends A bytes to end b, end b sends B bytes back
   (both ends are in this process).
Prints its own account: {"pid", "unix": {"tx", "rx"}, "tcp": {"tx", "rx", "local"},
                         "pair": {"a_fd", "b_fd", "a_to_b", "b_to_a"}}.
"""

import argparse
import os
import socket

from peerlib import TIMEOUT, addr_str, recv_all, say


def talk(s, n):
    s.sendall(b"u" * n)
    s.shutdown(socket.SHUT_WR)
    return recv_all(s)


def read_exactly(s, n):
    got = 0
    while got < n:
        d = s.recv(n - got)
        if not d:
            raise EOFError("socketpair cut short")
        got += len(d)
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", required=True)
    ap.add_argument("--unix-size", type=int, required=True)
    ap.add_argument("--tcp-port", type=int, required=True)
    ap.add_argument("--tcp-size", type=int, required=True)
    ap.add_argument("--pair-sizes", required=True)
    a = ap.parse_args()
    pa, pb = (int(x) for x in a.pair_sizes.split(","))

    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(TIMEOUT)
    u.connect(a.path)
    urx = talk(u, a.unix_size)
    u.close()

    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.settimeout(TIMEOUT)
    t.connect(("127.0.0.1", a.tcp_port))
    local = addr_str(t.getsockname())
    trx = talk(t, a.tcp_size)
    t.close()

    x, y = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    x.settimeout(TIMEOUT)
    y.settimeout(TIMEOUT)
    fds = (x.fileno(), y.fileno())
    x.sendall(b"p" * pa)
    read_exactly(y, pa)
    y.sendall(b"r" * pb)
    read_exactly(x, pb)
    x.close()
    y.close()

    say({
        "pid": os.getpid(),
        "unix": {"tx": a.unix_size, "rx": urx},
        "tcp": {"tx": a.tcp_size, "rx": trx, "local": local},
        "pair": {"a_fd": fds[0], "b_fd": fds[1], "a_to_b": pa, "b_to_a": pb},
    })


if __name__ == "__main__":
    main()

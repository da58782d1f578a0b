"""Metered forking TCP client (runs under the shim), against tcp_peer.py in echo mode.

    fork_clients.py --port P --parent-size N --child-sizes A,B,... [--grandchildren]

The parent connects to 127.0.0.1:P, sends N bytes of b"P" and reads the echo; then forks one
child per entry of --child-sizes. Child i opens its OWN connection, sends that many bytes of
chr(ord("a") + i), reads the echo, closes and leaves with os._exit(0). With --grandchildren,
child i first forks a grandchild that does the same with half as many bytes of
chr(ord("A") + i), and waits for it. The parent waits for every child, then half-closes and
drains its connection.
Prints its own account: {"pid", "children": [pids], "child_status": [codes], "local"}.
"""

import argparse
import os
import socket
import sys

from peerlib import TIMEOUT, echo, say


def one_connection(port, data):
    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    c.settimeout(TIMEOUT)
    c.connect(("127.0.0.1", port))
    echo(c, data)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--parent-size", type=int, required=True)
    ap.add_argument("--child-sizes", required=True)
    ap.add_argument("--grandchildren", action="store_true")
    a = ap.parse_args()

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", a.port))
    echo(s, b"P" * a.parent_size)
    sys.stdout.flush()

    children = []
    for i, n in enumerate(int(x) for x in a.child_sizes.split(",")):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                grandchild = os.fork() if a.grandchildren else -1
                if grandchild == 0:
                    try:
                        one_connection(a.port, chr(ord("A") + i).encode() * (n // 2))
                        code = 0
                    finally:
                        os._exit(code)
                one_connection(a.port, chr(ord("a") + i).encode() * n)
                if grandchild > 0 and os.waitstatus_to_exitcode(os.waitpid(grandchild, 0)[1]) != 0:
                    raise RuntimeError("grandchild failed")
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    status = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in children]
    local = "%s:%d" % s.getsockname()
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
    say({"pid": os.getpid(), "children": children, "child_status": status, "local": local})


if __name__ == "__main__":
    main()

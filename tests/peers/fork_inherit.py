"""Metered client whose forked child uses the socket it inherited (runs under the shim),
against tcp_peer.py in echo mode.

    fork_inherit.py --port P --sizes PARENT_BEFORE,CHILD,PARENT_AFTER

The parent connects to 127.0.0.1:P, sends PARENT_BEFORE bytes of b"P" and reads the echo,
then forks. The child -- on the SAME socket, created before the fork -- sends CHILD bytes of
b"C", reads the echo and leaves with os._exit(0). The parent waits for it, sends
PARENT_AFTER bytes of b"Q", reads the echo, half-closes and drains.
Prints its own account: {"pid", "child", "child_status", "local"}.
"""

import argparse
import os
import socket
import sys

from peerlib import TIMEOUT, echo, say


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sizes", required=True)
    a = ap.parse_args()
    before, child, after = (int(x) for x in a.sizes.split(","))

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", a.port))
    echo(s, b"P" * before)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            echo(s, b"C" * child)
            code = 0
        finally:
            os._exit(code)
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    echo(s, b"Q" * after)
    local = "%s:%d" % s.getsockname()
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    s.close()
    say({"pid": os.getpid(), "child": pid, "child_status": status, "local": local})


if __name__ == "__main__":
    main()

"""Metered client that execs (runs under the shim), against tcp_peer.py in echo mode.

    exec_first.py --port P --sizes BEFORE,AFTER

Connects to 127.0.0.1:P, sends BEFORE bytes of b"A" and reads the echo, makes the socket
inheritable and execs exec_second.py (same interpreter) with the fd number in argv; that
image goes on using the socket it did not create.
Prints, before the exec: {"pid", "fd", "local"}.
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
    before, after = (int(x) for x in a.sizes.split(","))

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.connect(("127.0.0.1", a.port))
    echo(s, b"A" * before)
    fd = s.fileno()
    os.set_inheritable(fd, True)
    say({"pid": os.getpid(), "fd": fd, "local": "%s:%d" % s.getsockname()})
    second = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exec_second.py")
    os.execv(sys.executable, [sys.executable, second, str(fd), str(after)])


if __name__ == "__main__":
    main()

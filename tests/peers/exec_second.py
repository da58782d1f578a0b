"""The image exec_first.py execs (runs under the shim).

    exec_second.py FD SIZE

Wraps the inherited, already connected fd (socket.socket(fileno=FD)), sends SIZE bytes of
b"B", reads the echo, half-closes and drains.
Prints its own account: {"pid", "fd", "tx", "rx"}.
"""

import os
import socket
import sys

from peerlib import TIMEOUT, echo, recv_all, say


def main():
    fd, size = int(sys.argv[1]), int(sys.argv[2])
    s = socket.socket(fileno=fd)
    s.settimeout(TIMEOUT)
    data = b"B" * size
    rx = echo(s, data)
    s.shutdown(socket.SHUT_WR)
    rx += recv_all(s)
    s.close()
    say({"pid": os.getpid(), "fd": fd, "tx": len(data), "rx": rx})


if __name__ == "__main__":
    main()

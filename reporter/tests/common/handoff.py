"""Connects to the reporter for the test: `handoff.py N`.

The reporter takes connections only from the run's own processes, so a test cannot connect
to it itself. This script, run by the command (a descendant), connects N times to
$SOCKMETER_SOCKET and hands the connected sockets to the test over the Unix socket named by
$SM_TEST_HANDOFF (SCM_RIGHTS). The reporter sees this process as each connection's peer.
"""

import os
import socket
import sys

n = int(sys.argv[1])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.environ["SOCKMETER_SOCKET"])
    socks.append(s)
h = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
h.connect(os.environ["SM_TEST_HANDOFF"])
socket.send_fds(h, [b"x"], [s.fileno() for s in socks])
h.close()

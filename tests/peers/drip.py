"""Metered TCP client for the tests of reporters that come and go (runs under the shim).

    drip.py --port P [--conns N] [--size S] [--until FILE] [--every SECONDS]

Without --until: opens N connections to 127.0.0.1:P one after the other, sends S bytes on
each, closes it. With --until: opens one connection and sends S bytes every SECONDS until FILE
exists, then closes it (a long-lived process that outlives a reporter's restart). Prints what
it sent: {"pid", "sent"}.
"""

import argparse
import json
import os
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--until")
    ap.add_argument("--every", type=float, default=0.05)
    a = ap.parse_args()
    sent = 0
    if a.until:
        s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
        # Bounded: a test that never creates the file still ends.
        deadline = time.monotonic() + 120
        while not os.path.exists(a.until) and time.monotonic() < deadline:
            s.sendall(b"d" * a.size)
            sent += a.size
            time.sleep(a.every)
        s.close()
    else:
        for _ in range(a.conns):
            s = socket.create_connection(("127.0.0.1", a.port), timeout=30)
            s.sendall(b"d" * a.size)
            sent += a.size
            s.close()
    print(json.dumps({"pid": os.getpid(), "sent": sent}), flush=True)


main()

"""A hostile client of the reporter's socket (not metered).

    hostile.py SOCKET forge
        Sends a forged conversation (hello of pid 777777, exe /forged/by/outsider, a socket,
        a delta of 123456789 bytes, bye), then waits (bounded) for the reporter to close the
        connection. Verdict: {"closed": true|false, "sent": bytes it managed to write}.
    hostile.py SOCKET flood N
        Sends a hello, then N socket announcements (distinct ids and peers, 1000 modules),
        and exits. Verdict: {"sent": bytes, "lines": N}.
    hostile.py SOCKET fat N
        The same, each socket as large as the reporter accepts: local and peer addresses of
        128 bytes, and a delta with 4 peers of 128 bytes; then N closed ones alike.

SOCKET is the socket's path, or @FILE to read the path from FILE. A last argument `door`
connects to the run's second door (the abstract socket named after the path) instead.
"""

import json
import socket
import sys

from peerlib import TIMEOUT, say


def line(obj):
    return (json.dumps(obj, separators=(",", ":")) + "\n").encode()


def hello(pid, exe):
    return line({"v": 1, "type": "hello", "pid": pid, "ppid": 1, "exe": exe, "argv": [exe],
                 "started_at": 1, "origin": "start", "shim_version": "hostile", "interval_ms": 1000})


def announce(i, module, fat=False, closed=False):
    local = "127.0.0.1:%d" % (i % 65535)
    peer = "10.%d.%d.%d:%d" % (i >> 16 & 255, i >> 8 & 255, i & 255, i % 65535)
    msg = {"v": 1, "type": "socket", "id": i, "fd": 3, "family": "inet", "proto": "udp" if fat else "tcp",
           "role": "datagram" if fat else "connected", "local": local.rjust(128, "l") if fat else local,
           "peer": peer.rjust(128, "p") if fat else peer, "module": module, "opened_at": 1}
    if closed:
        msg["closed_at"] = 2
        msg["counts"] = counts(i)
    return line(msg)


def counts(i):
    return {"id": i, "tx_bytes": 1, "peers": [{"peer": ("%d:%d" % (i, k)).rjust(128, "q"), "tx_bytes": 1}
                                             for k in range(4)]}


def wait_closed(s):
    s.settimeout(TIMEOUT)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def send(s, data):
    try:
        s.sendall(data)
        return len(data)
    except (BrokenPipeError, ConnectionResetError):
        return 0


def main():
    path = sys.argv[1]
    if path.startswith("@"):
        path = open(path[1:]).read().strip()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if sys.argv[-1] == "door":
        s.connect("\0sockmeter-door:" + path)
    else:
        s.connect(path)
    if sys.argv[2] == "forge":
        data = hello(777777, "/forged/by/outsider") + announce(1, "/forged/module.so") + line(
            {"v": 1, "type": "delta", "at": 2, "sockets": [{"id": 1, "tx_bytes": 123456789, "rx_bytes": 5}]}
        ) + line({"v": 1, "type": "bye", "at": 3, "reason": "exit"})
        sent = send(s, data)
        say({"closed": wait_closed(s), "sent": sent})
    elif sys.argv[2] == "flood":
        n = int(sys.argv[3])
        sent = send(s, hello(777777, "/flood"))
        batch = []
        for i in range(1, n + 1):
            batch.append(announce(i, "/m%d.so" % (i % 1000)))
            if len(batch) == 1000:
                sent += send(s, b"".join(batch))
                batch = []
        sent += send(s, b"".join(batch))
        say({"sent": sent, "lines": n})
    elif sys.argv[2] == "fat":
        n = int(sys.argv[3])
        sent = send(s, hello(777777, "/fat"))
        for i in range(1, 2 * n + 1):
            closed = i > n
            data = announce(i, "/m%d.so" % (i % 1000), fat=True, closed=closed)
            if not closed:
                data += line({"v": 1, "type": "delta", "at": 2, "sockets": [counts(i)]})
            sent += send(s, data)
        say({"sent": sent, "lines": 2 * n})


main()

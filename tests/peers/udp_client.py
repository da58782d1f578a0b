"""Metered UDP client (runs under the shim).

    udp_client.py [--family 4|6] --port P --unconnected A,B,... --connected C,D,...

First an unconnected socket: sendto() one datagram of each size in --unconnected to
127.0.0.1 (or ::1):P without connect(), each answered (recvfrom) before the next. Then a
second socket, connect()ed to the same address, send()s one datagram of each size in
--connected and recv()s each answer.
Prints its own account: {"pid", "unconnected": {"local", "local_port", "tx", "rx", "datagrams"},
                         "connected": {"local", "local_port", "tx", "rx", "datagrams"}}.
"""

import argparse
import os
import socket

from peerlib import TIMEOUT, addr_str, af, host, say


def sizes(text):
    return [int(n) for n in text.split(",") if n]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", type=int, default=4)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--unconnected", default="")
    ap.add_argument("--connected", default="")
    a = ap.parse_args()
    dest = (host(a.family), a.port)

    u = socket.socket(af(a.family), socket.SOCK_DGRAM)
    u.settimeout(TIMEOUT)
    ua = {"tx": 0, "rx": 0, "datagrams": 0}
    for n in sizes(a.unconnected):
        ua["tx"] += u.sendto(b"d" * n, dest)
        d, _ = u.recvfrom(65536)
        ua["rx"] += len(d)
        ua["datagrams"] += 1
    # Bound implicitly by the first sendto(): the wildcard address, so the port is what counts.
    ua["local"] = addr_str(u.getsockname())
    ua["local_port"] = u.getsockname()[1]

    c = socket.socket(af(a.family), socket.SOCK_DGRAM)
    c.settimeout(TIMEOUT)
    c.connect(dest)
    ca = {"tx": 0, "rx": 0, "datagrams": 0}
    for n in sizes(a.connected):
        ca["tx"] += c.send(b"k" * n)
        ca["rx"] += len(c.recv(65536))
        ca["datagrams"] += 1
    ca["local"] = addr_str(c.getsockname())
    ca["local_port"] = c.getsockname()[1]
    u.close()
    c.close()
    say({"pid": os.getpid(), "unconnected": ua, "connected": ca})


if __name__ == "__main__":
    main()

"""Oracle UDP server (not metered).

    udp_peer.py [--family 4|6] --datagrams K

Binds 127.0.0.1 (or ::1) port 0, prints the port, and answers every datagram with one
datagram of len(request) // 3 + 5 bytes of b"U" to its sender. Ends after K datagrams, or
when none arrives for a while.
Verdict: {"rx", "tx", "rx_datagrams", "tx_datagrams", "timed_out",
          "per_peer": [{"peer", "rx", "tx", "rx_datagrams", "tx_datagrams"}]}
in order of first appearance.
"""

import argparse
import socket

from peerlib import TIMEOUT, addr_str, af, host, say, say_port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", type=int, default=4)
    ap.add_argument("--datagrams", type=int, required=True)
    a = ap.parse_args()

    s = socket.socket(af(a.family), socket.SOCK_DGRAM)
    s.bind((host(a.family), 0))
    s.settimeout(TIMEOUT)
    say_port(s.getsockname()[1])

    peers, order, seen, timed_out = {}, [], 0, False
    while seen < a.datagrams:
        try:
            d, sa = s.recvfrom(65536)
        except socket.timeout:
            timed_out = True
            break
        seen += 1
        key = addr_str(sa)
        if key not in peers:
            peers[key] = {"peer": key, "rx": 0, "tx": 0, "rx_datagrams": 0, "tx_datagrams": 0}
            order.append(key)
        p = peers[key]
        p["rx"] += len(d)
        p["rx_datagrams"] += 1
        reply = b"U" * (len(d) // 3 + 5)
        n = s.sendto(reply, sa)
        p["tx"] += n
        p["tx_datagrams"] += 1
    s.close()
    recs = [peers[k] for k in order]
    say({
        "rx": sum(r["rx"] for r in recs),
        "tx": sum(r["tx"] for r in recs),
        "rx_datagrams": sum(r["rx_datagrams"] for r in recs),
        "tx_datagrams": sum(r["tx_datagrams"] for r in recs),
        "timed_out": timed_out,
        "per_peer": recs,
    })


if __name__ == "__main__":
    main()

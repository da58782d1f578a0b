"""Oracle TCP client (not metered), for a metered server.

    client_peer.py [--family 4|6] --portfile F --sizes A,B,...

Prints 0 (it does not listen) and waits (bounded) for the metered server to write its port
to F, then opens one connection per entry of --sizes, all at once (one thread each): sends
that many bytes, half-closes, and reads the answer until EOF.
Verdict: {"rx", "tx", "connections", "per_conn": [{"local", "tx", "rx"}]} in --sizes order,
where "local" is this client's address (the server's accepted socket's peer).
"""

import argparse
import socket
import threading

from peerlib import TIMEOUT, addr_str, af, host, recv_all, say, say_port, wait_for_file


def one(family, port, size, rec):
    s = socket.socket(af(family), socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    tx = rx = 0
    try:
        s.connect((host(family), port))
        rec["local"] = addr_str(s.getsockname())
        data = b"q" * size
        s.sendall(data)
        tx = len(data)
        s.shutdown(socket.SHUT_WR)
        rx += recv_all(s)
    except OSError as e:
        rec["error"] = str(e)
    finally:
        s.close()
        rec.update(tx=tx, rx=rx)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", type=int, default=4)
    ap.add_argument("--portfile", required=True)
    ap.add_argument("--sizes", required=True)
    a = ap.parse_args()
    say_port(0)
    port = int(wait_for_file(a.portfile))
    recs, threads = [], []
    for n in [int(x) for x in a.sizes.split(",") if x]:
        rec = {}
        recs.append(rec)
        t = threading.Thread(target=one, args=(a.family, port, n, rec))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    say({
        "rx": sum(r["rx"] for r in recs),
        "tx": sum(r["tx"] for r in recs),
        "connections": sum(1 for r in recs if "local" in r),
        "per_conn": recs,
    })


if __name__ == "__main__":
    main()

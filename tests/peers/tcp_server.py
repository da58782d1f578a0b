"""Metered TCP server (runs under the shim).

    tcp_server.py [--family 4|6] --portfile F --conns K

Listens on 127.0.0.1 (or ::1) port 0 and writes the port to F (atomically, for the
unmetered client_peer.py to find), then accepts K connections one after another: reads each
until EOF and answers rx // 2 + 11 bytes of b"S".
Prints its own account: {"pid", "port", "per_conn": [{"peer", "rx", "tx"}]}.
"""

import argparse
import os
import socket

from peerlib import TIMEOUT, addr_str, af, host, recv_all, say, write_file_atomically


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", type=int, default=4)
    ap.add_argument("--portfile", required=True)
    ap.add_argument("--conns", type=int, required=True)
    a = ap.parse_args()

    ls = socket.socket(af(a.family), socket.SOCK_STREAM)
    ls.bind((host(a.family), 0))
    ls.listen(16)
    ls.settimeout(TIMEOUT)
    port = ls.getsockname()[1]
    write_file_atomically(a.portfile, str(port))

    recs = []
    for _ in range(a.conns):
        conn, sa = ls.accept()
        conn.settimeout(TIMEOUT)
        rx = recv_all(conn)
        reply = b"S" * (rx // 2 + 11)
        conn.sendall(reply)
        conn.shutdown(socket.SHUT_WR)
        conn.close()
        recs.append({"peer": addr_str(sa), "rx": rx, "tx": len(reply)})
    ls.close()
    say({"pid": os.getpid(), "port": port, "per_conn": recs})


if __name__ == "__main__":
    main()

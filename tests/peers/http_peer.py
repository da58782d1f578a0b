"""Oracle HTTP/1.1 server (not metered).

    http_peer.py --size N [--conns K]

Listens on 127.0.0.1 port 0, prints the port, and serves K connections one after another:
reads the request head (up to the blank line), answers "200 OK" with a body of N bytes,
Content-Length and Connection: close, then half-closes and keeps reading until the client's
EOF so that every byte the client sent is counted. Ends after K connections or a timeout.
Verdict: {"rx", "tx", "connections", "timed_out",
          "per_conn": [{"peer", "rx", "tx", "request_line"}]}.
"""

import argparse
import socket

from peerlib import TIMEOUT, addr_str, recv_all, say, say_port


def serve(conn, size):
    rx, tx, head = 0, 0, b""
    conn.settimeout(TIMEOUT)
    while b"\r\n\r\n" not in head:
        d = conn.recv(65536)
        if not d:
            break
        rx += len(d)
        head += d
    body = bytes(range(256)) * (size // 256) + bytes(size % 256)
    resp = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/octet-stream\r\n"
        + f"Content-Length: {size}\r\n".encode()
        + b"Connection: close\r\n\r\n"
        + body
    )
    conn.sendall(resp)
    tx += len(resp)
    conn.shutdown(socket.SHUT_WR)
    rx += recv_all(conn)
    conn.close()
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    return rx, tx, line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--conns", type=int, default=1)
    a = ap.parse_args()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    ls.settimeout(TIMEOUT)
    say_port(ls.getsockname()[1])

    recs, timed_out = [], False
    for _ in range(a.conns):
        try:
            conn, sa = ls.accept()
        except socket.timeout:
            timed_out = True
            break
        rec = {"peer": addr_str(sa)}
        try:
            rec["rx"], rec["tx"], rec["request_line"] = serve(conn, a.size)
        except OSError as e:
            rec.update(rx=-1, tx=-1, error=str(e))
        recs.append(rec)
    ls.close()
    say({
        "rx": sum(r["rx"] for r in recs),
        "tx": sum(r["tx"] for r in recs),
        "connections": len(recs),
        "timed_out": timed_out,
        "per_conn": recs,
    })


if __name__ == "__main__":
    main()

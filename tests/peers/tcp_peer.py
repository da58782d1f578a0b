"""Oracle TCP server (not metered).

    tcp_peer.py [--family 4|6] [--conns K] [--mode echo|reply] [--reply N]

Listens on 127.0.0.1 (or ::1) port 0, prints the port, accepts K connections (each served
in its own thread) and ends when they are all done, or after a timeout.
  echo:  sends back every chunk as it arrives, until the client's EOF.
  reply: reads until the client's EOF, then sends N bytes of b"R" and closes.
Verdict: {"rx", "tx", "connections", "timed_out",
          "per_conn": [{"peer", "rx", "tx", "rx_by_byte", "tx_by_byte"}]} in accept order,
where "peer" is the client's address as this server saw it.
"""

import argparse
import socket
import threading

from peerlib import TIMEOUT, Tally, addr_str, af, host, recv_all, say, say_port


def serve(conn, mode, reply, rec):
    rxt, txt = Tally(), Tally()
    try:
        conn.settimeout(TIMEOUT)
        if mode == "echo":
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                rxt.add(d)
                conn.sendall(d)
                txt.add(d)
        else:
            recv_all(conn, rxt)
            body = b"R" * reply
            conn.sendall(body)
            txt.add(body)
        conn.shutdown(socket.SHUT_WR)
    except OSError as e:
        rec["error"] = str(e)
    finally:
        conn.close()
        rec.update(rx=rxt.n, tx=txt.n, rx_by_byte=rxt.by_byte(), tx_by_byte=txt.by_byte())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", type=int, default=4)
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--mode", choices=["echo", "reply"], default="echo")
    ap.add_argument("--reply", type=int, default=0)
    a = ap.parse_args()

    ls = socket.socket(af(a.family), socket.SOCK_STREAM)
    ls.bind((host(a.family), 0))
    ls.listen(64)
    ls.settimeout(TIMEOUT)
    say_port(ls.getsockname()[1])

    recs, threads, timed_out = [], [], False
    for _ in range(a.conns):
        try:
            conn, sa = ls.accept()
        except socket.timeout:
            timed_out = True
            break
        rec = {"peer": addr_str(sa)}
        recs.append(rec)
        t = threading.Thread(target=serve, args=(conn, a.mode, a.reply, rec))
        t.start()
        threads.append(t)
    ls.close()
    for t in threads:
        t.join()
    say({
        "rx": sum(r["rx"] for r in recs),
        "tx": sum(r["tx"] for r in recs),
        "connections": len(recs),
        "timed_out": timed_out,
        "per_conn": recs,
    })


if __name__ == "__main__":
    main()

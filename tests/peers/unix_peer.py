"""Oracle Unix-domain stream server (not metered).

    unix_peer.py --path PATH --reply N

Binds an AF_UNIX stream socket at PATH, prints 0 (it has no port; the line says it is ready),
accepts one connection, reads until EOF, answers N bytes of b"X", and removes PATH. Ends
after that connection or a timeout.
Verdict: {"rx", "tx", "connections"}.
"""

import argparse
import os
import socket

from peerlib import TIMEOUT, say, say_port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", required=True)
    ap.add_argument("--reply", type=int, required=True)
    a = ap.parse_args()

    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(a.path)
    ls.listen(4)
    ls.settimeout(TIMEOUT)
    say_port(0)
    rx = tx = conns = 0
    try:
        conn, _ = ls.accept()
        conns = 1
        conn.settimeout(TIMEOUT)
        while True:
            d = conn.recv(65536)
            if not d:
                break
            rx += len(d)
        data = b"X" * a.reply
        conn.sendall(data)
        tx = len(data)
        conn.close()
    except socket.timeout:
        pass
    ls.close()
    os.unlink(a.path)
    say({"rx": rx, "tx": tx, "connections": conns})


if __name__ == "__main__":
    main()

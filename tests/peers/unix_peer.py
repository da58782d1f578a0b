"""Oracle Unix-domain stream server (not metered).

    unix_peer.py --path PATH --reply N

Binds an AF_UNIX stream socket at PATH, prints 0 (it has no port; the line says it is ready),
accepts one connection, reads until EOF, answers N bytes of b"X", and removes PATH. Ends
after that connection or a timeout.
Verdict: {"rx", "tx", "connections", "timed_out"} plus "error" (the exception's text) when the
connection failed after accept. "timed_out" is true when no connection came, or when the
connection stalled past the timeout (then "error" is set too); the counts are then partial.
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
    timed_out, error = False, None
    try:
        conn, _ = ls.accept()
    except socket.timeout:
        timed_out = True
    else:
        conns = 1
        try:
            conn.settimeout(TIMEOUT)
            while True:
                d = conn.recv(65536)
                if not d:
                    break
                rx += len(d)
            data = b"X" * a.reply
            conn.sendall(data)
            tx = len(data)
        except OSError as e:
            # socket.timeout is an OSError: a stall after accept is both.
            timed_out = timed_out or isinstance(e, socket.timeout)
            error = f"{type(e).__name__}: {e}"
        finally:
            conn.close()
    ls.close()
    os.unlink(a.path)
    verdict = {"rx": rx, "tx": tx, "connections": conns, "timed_out": timed_out}
    if error is not None:
        verdict["error"] = error
    say(verdict)


if __name__ == "__main__":
    main()

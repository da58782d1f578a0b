"""Oracle peer for tests/c/eintr.c (not metered): it makes each of the program's blocking calls
block until the program says, with a marker file in DIR, that the call has returned (or, with
SA_RESTART, that it is about to make it), so whether a call can be interrupted never depends
on timing.

    eintr_peer.py DIR

1. Listens on 127.0.0.1 with a backlog of 0 and fills its accept queue with a connection of
   its own (checked with TCP_INFO), then prints its port: the program's connect blocks (the
   kernel drops its SYN) until the queue has room.
2. Marker "connect": after 0.3 s, accepts and closes its filler, then accepts the program's
   connection (the SYN is retransmitted after 1 s).
3. Marker "send": after 0.2 s, sends RECV_BYTES in 8 pieces, 20 ms apart.
4. Marker "drain": reads the connection until EOF.
5. Marker "dial" (its text: the program's listening port): after 0.2 s, connects there, sends
   DIAL_BYTES and closes.
Verdict: {"main": {"client": "127.0.0.1:P", "rx": N, "tx": N}, "dial": {"local": "...", "tx": N}}
"""

import os
import socket
import struct
import sys
import time

from peerlib import TIMEOUT, say, say_port, wait_for_file

RECV_BYTES = 40000
DIAL_BYTES = 7777


def accept_queue_len(ls):
    # struct tcp_info: for a listener, tcpi_unacked is the accept queue's length (u8 fields
    # state..delivery_rate_app_limited take 8 bytes, then u32 rto, ato, snd_mss, rcv_mss,
    # unacked).
    info = ls.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 8 + 4 * 4)[0]


def main():
    d = sys.argv[1]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    ls.listen(0)
    ls.settimeout(TIMEOUT)
    port = ls.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    deadline = time.monotonic() + TIMEOUT
    while accept_queue_len(ls) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError("the filler never reached the accept queue")
        time.sleep(0.005)
    say_port(port)

    wait_for_file(os.path.join(d, "connect"))
    time.sleep(0.3)
    f, _ = ls.accept()
    f.close()
    filler.close()
    c, client = ls.accept()
    c.settimeout(TIMEOUT)

    wait_for_file(os.path.join(d, "send"))
    time.sleep(0.2)
    piece = b"s" * (RECV_BYTES // 8)
    tx = 0
    for _ in range(8):
        c.sendall(piece)
        tx += len(piece)
        time.sleep(0.02)

    wait_for_file(os.path.join(d, "drain"))
    rx = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        rx += len(b)
    c.close()

    dial_port = int(wait_for_file(os.path.join(d, "dial")))
    time.sleep(0.2)
    k = socket.create_connection(("127.0.0.1", dial_port))
    k.sendall(b"k" * DIAL_BYTES)
    local = "%s:%d" % k.getsockname()
    k.close()
    say({"main": {"client": "%s:%d" % client, "rx": rx, "tx": tx}, "dial": {"local": local, "tx": DIAL_BYTES}})


if __name__ == "__main__":
    main()

"""Shared helpers for the oracle peers and the metered test programs (tests/peers/).

Oracle peers are NOT metered (the harness strips LD_PRELOAD): they print their port (or 0
when they do not listen) as the first line, do their part of the exchange, and end by
themselves -- after the expected number of connections/datagrams or after a timeout -- with
one JSON line saying what they really received and sent.
"""

import json
import os
import socket
import sys
import time

# Generous: the machine may be busy; a peer only waits this long when something went wrong.
TIMEOUT = 30.0


def host(family):
    return "::1" if family == 6 else "127.0.0.1"


def af(family):
    return socket.AF_INET6 if family == 6 else socket.AF_INET


def addr_str(sa):
    """'127.0.0.1:80' or '[::1]:80', the text form sockmeter's report uses."""
    h, p = sa[0], sa[1]
    return f"[{h}]:{p}" if ":" in h else f"{h}:{p}"


def say(obj):
    """The final verdict (or a program's own account): one JSON line on stdout."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def say_port(port):
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()


class Tally:
    """Bytes counted in total and per byte value (the tests give each writer its own letter)."""

    def __init__(self):
        self.n = 0
        self.by = {}

    def add(self, data):
        self.n += len(data)
        for v in set(data):
            k = chr(v)
            self.by[k] = self.by.get(k, 0) + data.count(v)

    def by_byte(self):
        return dict(self.by)


def recv_all(s, tally=None, bufsize=65536):
    """Reads until EOF; returns how many bytes came (and counts them into `tally`, if given)."""
    n = 0
    while True:
        d = s.recv(bufsize)
        if not d:
            return n
        n += len(d)
        if tally is not None:
            tally.add(d)


def echo(s, data):
    """Sends `data` and reads its echo back; returns the bytes read (len(data))."""
    s.sendall(data)
    got = 0
    while got < len(data):
        d = s.recv(65536)
        if not d:
            raise EOFError("echo cut short")
        got += len(d)
    return got


def wait_for_file(path, timeout=TIMEOUT):
    """Polls (bounded) for a file another process writes atomically; returns its text."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{path} did not appear within {timeout}s")


def write_file_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)

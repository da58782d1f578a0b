"""Metered client that hands its connection to a program it starts (runs under the shim).

    spawn_child.py --port P --how subprocess|posix_spawn --file F --after N

Connects to 127.0.0.1:P, runs `cat F` with the connection as its stdout (subprocess.run: a
vfork child that dup2s the socket and execs; or os.posix_spawn with a dup2 file action), waits
for it, sends N bytes itself and closes. Prints {"local": port}.
"""

import argparse
import json
import os
import socket
import subprocess

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, required=True)
parser.add_argument("--how", choices=["subprocess", "posix_spawn"], required=True)
parser.add_argument("--file", required=True)
parser.add_argument("--after", type=int, default=0)
args = parser.parse_args()

s = socket.create_connection(("127.0.0.1", args.port))
if args.how == "subprocess":
    subprocess.run(["cat", args.file], stdout=s.fileno(), check=True)
else:
    pid = os.posix_spawnp("cat", ["cat", args.file], os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, s.fileno(), 1)])
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
s.sendall(b"p" * args.after)
print(json.dumps({"local": s.getsockname()[1]}), flush=True)
s.close()

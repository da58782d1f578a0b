"""A small program for the "the shim changes nothing" checks (runs under the shim).

    exit_with.py CODE

Writes a fixed line to stdout and one to stderr, then exits with CODE.
"""

import sys

sys.stdout.write("out: the program's own output\n")
sys.stderr.write("err: the program's own diagnostics\n")
sys.exit(int(sys.argv[1]))

#!/usr/bin/env python3
"""Apple's two longest CoreFoundation headers the tests need, split by what each part declares.

`CFBase.h` (723 lines) and `CFString.h` (913) each hold several APIs. The repository keeps them
as a short header that includes its parts in order (`include/CoreFoundation/parts/`), each part
a run of Apple's lines taken verbatim, after one line of ours that says which lines and what
they declare. Put back together (each `#include` of a part replaced by the part, that first
line left out), they are Apple's files byte for byte: `check` proves it against the SHA-256 of
the files as released (swift-corelibs-foundation swift-5.10.1-RELEASE), so the compiler sees
exactly the header the libraries were built with.

  split_headers.py split INCLUDE_DIR    split the whole headers in INCLUDE_DIR/CoreFoundation
                                        (build.sh's last step)
  split_headers.py check INCLUDE_DIR    exit 1 unless the parts put back are Apple's files
"""
import hashlib
import re
import sys
from pathlib import Path

# Per header: its SHA-256 as released, and its parts: (first line, last line, name, what).
# Lines are 1-based and inclusive; lines outside every part stay in the header itself.
SPLITS = {
    "CFBase.h": (
        "f5ccbaec29690ebb14347f9689ba02439bf86f48ed7360c2d82512900b77fbf5",
        [
            (21, 150, "CFBase-platform.h", "the platform, the byte order and the scalar types"),
            (153, 336, "CFBase-attributes.h", "the compiler attributes and macros"),
            (337, 460, "CFBase-versions.h", "the framework's version numbers"),
            (461, 531, "CFBase-types.h", "CFIndex, CFTypeRef, comparison, CFRange and CFNull"),
            (532, 649, "CFBase-allocator.h", "the allocator API"),
            (650, 719, "CFBase-objects.h", "the polymorphic functions on every CF object"),
        ],
    ),
    "CFString.h": (
        "c86db7cf6381b80e275df94697aa608b098802a3ca1a9535a6dbfb00b27dfacf",
        [
            (207, 290, "CFString-create.h", "creating strings"),
            (291, 405, "CFString-contents.h", "reading and converting a string's contents"),
            (406, 591, "CFString-compare.h", "comparing, finding, splitting and parsing"),
            (592, 760, "CFString-mutable.h", "changing a mutable string"),
            (761, 810, "CFString-encodings.h", "the encodings available and their names"),
            (811, 908, "CFString-inline.h", "the inline buffer, surrogates and private functions"),
        ],
    ),
}

INCLUDE = "#include <CoreFoundation/parts/{}>\n"


def balanced(lines):
    depth = 0
    for line in lines:
        s = line.strip()
        if re.match(r"#\s*if", s):
            depth += 1
        elif re.match(r"#\s*endif", s):
            depth -= 1
        if depth < 0:
            return False
    return depth == 0


def split(cf: Path):
    (cf / "parts").mkdir(exist_ok=True)
    for header, (_, parts) in SPLITS.items():
        lines = (cf / header).read_text().splitlines(keepends=True)
        out, at = [], 1
        for first, last, name, what in parts:
            body = lines[first - 1 : last]
            if not balanced(body):
                sys.exit(f"{header} lines {first}-{last}: a conditional spans the cut")
            out += lines[at - 1 : first - 1]
            out.append(INCLUDE.format(name))
            head = f"/* {header}, lines {first}-{last} of Apple's file, verbatim: {what}. */\n"
            (cf / "parts" / name).write_text(head + "".join(body))
            at = last + 1
        out += lines[at - 1 :]
        (cf / header).write_text("".join(out))


def put_back(cf: Path, header: str) -> bytes:
    text = []
    for line in (cf / header).read_text().splitlines(keepends=True):
        m = re.fullmatch(r"#include <CoreFoundation/parts/(.+)>\n", line)
        if m:
            text += (cf / "parts" / m.group(1)).read_text().splitlines(keepends=True)[1:]
        else:
            text.append(line)
    return "".join(text).encode()


def check(cf: Path) -> bool:
    ok = True
    for header, (digest, _) in SPLITS.items():
        got = hashlib.sha256(put_back(cf, header)).hexdigest()
        if got != digest:
            print(f"{header}: put back, its SHA-256 is {got}, not Apple's {digest}")
            ok = False
    return ok


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("split", "check"):
        sys.exit(__doc__)
    cf = Path(sys.argv[2]) / "CoreFoundation"
    if sys.argv[1] == "split":
        split(cf)
    sys.exit(0 if check(cf) else 1)

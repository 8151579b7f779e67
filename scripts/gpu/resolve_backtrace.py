#!/usr/bin/env python3
"""Resolves the backtraces that tests/common/test_env.cpp prints on a crash.

Usage: resolve_backtrace.py LOG [MAX_CRASHES]
Reads a ctest --output-on-failure log, and for the first MAX_CRASHES (default 2) backtraces
prints each frame as function (file:line) using addr2line on the binary or shared library the
frame names (PIE offsets "+0x..." are what addr2line expects).
"""
import re
import subprocess
import sys

FRAME = re.compile(r"^(?P<obj>[^\s()]+)\((?P<sym>[^)+]*)\+?(?P<off>0x[0-9a-f]+)?\)\[(?P<addr>0x[0-9a-f]+)\]")


def resolve(obj, off):
    try:
        out = subprocess.run(["addr2line", "-Cfe", obj, off], capture_output=True, text=True, timeout=20).stdout
        lines = out.strip().splitlines()
        return " ".join(lines) if lines else "?"
    except Exception as e:  # addr2line missing, unreadable object
        return f"(addr2line: {e})"


def main():
    log = open(sys.argv[1], errors="replace").read().splitlines()
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    crashes = 0
    i = 0
    while i < len(log) and crashes < limit:
        if "test binary crashed; backtrace" not in log[i]:
            i += 1
            continue
        crashes += 1
        start = max(0, i - 8)
        print("\n".join(l for l in log[start:i] if "[ RUN" in l or "Test #" in l or "Note:" in l))
        i += 1
        while i < len(log):
            m = FRAME.match(log[i].strip())
            if not m:
                break
            obj, sym, off = m.group("obj"), m.group("sym"), m.group("off")
            where = resolve(obj, off) if off and not sym else ""
            print(f"  {obj.rsplit('/', 1)[-1]} {sym or ''}{('+' + off) if off and sym else ''} {where}")
            i += 1
    if crashes == 0:
        print("no crash backtraces in", sys.argv[1])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Extract C Kafel's syscall and argument names into tools/data/kafel_args.txt.

C Kafel's argument names are part of its policy language (`getrandom { count <
256 }`), so the crate accepts every one of them. This script reads the syscall
tables of a C Kafel checkout and writes the names, numbers and argument names
(facts only, no code) as a plain list that gen_tables.py merges into the
generated tables and tests/kafel_args.rs checks the crate against.

Run once per Kafel update, with a Kafel git directory and the commit nsjail
pins:

    python3 crates/kafel/tools/kafel_args.py /path/to/kafel.git 76d0f41

Output format, one syscall a line:
    <arch> <name> <number> <arg>:<size> ...
where <arch> is the crate's name (x86_64, aarch64, i386, arm), <arg> is Kafel's
name of the argument at that position ("-" for a position Kafel leaves
unnamed) and <size> its size in bytes in Kafel's table.
"""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "data", "kafel_args.txt")

# Kafel's table file per crate architecture name.
FILES = [
    ("x86_64", "src/syscalls/amd64_syscalls.c"),
    ("aarch64", "src/syscalls/aarch64_syscalls.c"),
    ("i386", "src/syscalls/i386_syscalls.c"),
    ("arm", "src/syscalls/arm_syscalls.c"),
]

ENTRY = re.compile(r'\{\s*"(\w+)"\s*,\s*(\d+)\s*,\s*\{')
ARG = re.compile(r'\[ARG_(\d)\]\s*=\s*\{\s*"(\w+)"\s*,\s*(\d+)\s*\}')


def parse(text, where):
    """Yields (name, number, [(index, arg, size)]) for each table entry."""
    pos = 0
    while True:
        m = ENTRY.search(text, pos)
        if not m:
            return
        # The entry's argument list ends at the first "}}" after its "{".
        end = text.find("}}", m.end())
        if end < 0:
            sys.exit(f"{where}: unterminated entry {m.group(1)}")
        body = text[m.end():end + 1]
        args = [(int(i), n, int(s)) for i, n, s in ARG.findall(body)]
        yield m.group(1), int(m.group(2)), args
        pos = end + 2


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: kafel_args.py KAFEL_GIT_DIR COMMIT")
    gitdir, commit = sys.argv[1], sys.argv[2]
    full = subprocess.run(
        ["git", "-C", gitdir, "rev-parse", commit], check=True, capture_output=True, text=True
    ).stdout.strip()
    out = [
        "# C Kafel's syscall names, numbers and argument names per architecture,",
        f"# extracted by tools/kafel_args.py from google/kafel at commit {full}",
        "# (the Kafel nsjail pins). Do not edit by hand.",
        "# Format: <arch> <name> <number> <arg>:<size>... (\"-\" = unnamed position).",
    ]
    for arch, path in FILES:
        text = subprocess.run(
            ["git", "-C", gitdir, "show", f"{full}:{path}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows = []
        for name, nr, args in parse(text, path):
            slots = ["-"] * (max((i for i, _, _ in args), default=-1) + 1)
            for i, n, s in args:
                if slots[i] != "-":
                    sys.exit(f"{path}: {name}: argument {i} named twice")
                slots[i] = f"{n}:{s}"
            rows.append((name, nr, slots))
        if not rows:
            sys.exit(f"{path}: no entries found")
        for name, nr, slots in sorted(rows):
            out.append(" ".join([arch, name, str(nr)] + slots).rstrip())
        print(f"{arch}: {len(rows)} syscalls", file=sys.stderr)
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()

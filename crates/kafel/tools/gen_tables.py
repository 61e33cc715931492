#!/usr/bin/env python3
"""Generate the kafel crate's syscall tables (src/tables/*.rs).

Run once, from anywhere, whenever tools/data/ changes:

    python3 crates/kafel/tools/gen_tables.py

Inputs (all checked in, all taken from the Linux kernel sources):
  data/syscall_64.tbl       x86_64 numbers, names and entry points
  data/syscall_generic.tbl  the generic table arm64 is built from
  data/syscall_32.tbl       i386 numbers, names and entry points
  data/syscall_arm.tbl      32-bit ARM (EABI and OABI) numbers, names, entry
                            points, and the ARM private syscalls (0xf0001..)
  data/syscall_args.txt     argument names/sizes of each entry point
  data/syscall_args_32.txt  what differs on the 32-bit architectures
  data/syscall_args_aarch64.txt  what differs on aarch64 (clone's order)
  data/kafel_names_32.txt   C Kafel's i386/arm spellings that name another
                            number than the rules below would
  data/kafel_args.txt       C Kafel's syscall and argument names (made by
                            kafel_args.py from a Kafel checkout)
  data/kafel_arg_meanings.txt  which kernel argument each Kafel name means
                            where Kafel's position is not the kernel's

Names: each row's kernel name is the primary name. Kafel historically named
syscalls after their entry point (sys_umount -> "umount", sys_newfstat ->
"newfstat"), so the entry-point name without "sys_" becomes an alias when it
differs; a leading underscore is also dropped as an alias ("_sysctl" ->
"sysctl"), because Kafel identifiers cannot start with "_". An alias never
replaces a kernel name, except the names listed in kafel_names_32.txt for the
32-bit architectures: there C Kafel's meaning wins (i386 "chown" is chown32).

Argument names: the kernel's name of each argument comes first; C Kafel's name
for it is accepted too (an alias). A Kafel name means the kernel's argument of
the same name when the kernel has one, else what kafel_arg_meanings.txt says,
else the argument at Kafel's position. Each Kafel name that does not read the
argument at Kafel's position, or has no kernel counterpart, is listed in the
syscall's `kafel_diffs`, so that a policy using it can be warned about. Sizes
are the kernel's; where the kernel declares no names, Kafel's names and sizes.

On the 32-bit architectures every argument is 4 bytes (2 for umode_t), so
comparisons use the low half of an argument, as C Kafel's i386/arm tables do.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "src", "tables")

ARCHES = [
    # (module, table file, abis kept, Kafel arch name, argument override files)
    ("x86_64", "syscall_64.tbl", {"common", "64"}, "x86_64", []),
    (
        "aarch64",
        "syscall_generic.tbl",
        {"common", "64", "renameat", "rlimit", "memfd_secret"},
        "aarch64",
        ["syscall_args_aarch64.txt"],
    ),
    ("x86", "syscall_32.tbl", {"i386"}, "i386", ["syscall_args_32.txt"]),
    ("arm", "syscall_arm.tbl", {"common", "eabi", "oabi", "private"}, "arm", ["syscall_args_32.txt"]),
]
BITS32 = {"i386", "arm"}


def read_rows(path, abis):
    rows = []
    seen_nr = {}
    seen_name = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) < 3:
                sys.exit(f"{path}:{lineno}: expected <nr> <abi> <name> [<entry>]")
            nr, abi, name = int(parts[0]), parts[1], parts[2]
            entry = parts[3] if len(parts) > 3 else None
            if abi not in abis:
                continue
            if nr in seen_nr:
                sys.exit(f"{path}:{lineno}: number {nr} repeated (also line {seen_nr[nr]})")
            if name in seen_name:
                sys.exit(f"{path}:{lineno}: name {name} repeated (also line {seen_name[name]})")
            seen_nr[nr] = lineno
            seen_name[name] = lineno
            rows.append((nr, name, entry))
    rows.sort()
    return rows


def read_args(path):
    args = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            entry = parts[0]
            if entry in args:
                sys.exit(f"{path}:{lineno}: {entry} repeated")
            lst = []
            if parts[1:] == ["-"]:
                args[entry] = None
                continue
            for p in parts[1:]:
                name, size = p.split(":")
                if int(size) not in (2, 4, 8):
                    sys.exit(f"{path}:{lineno}: bad size {size}")
                lst.append((name, int(size)))
            if len(lst) > 6:
                sys.exit(f"{path}:{lineno}: more than 6 arguments")
            args[entry] = lst
    return args


def read_kafel_names(path):
    names = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            arch, name, nr = line.split()
            if (arch, name) in names:
                sys.exit(f"{path}:{lineno}: {arch} {name} repeated")
            names[(arch, name)] = int(nr)
    return names


def read_kafel_args(path):
    """(arch, number) -> (Kafel name, [(position, name, size)])."""
    entries = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            arch, name, nr, *slots = line.split()
            key = (arch, int(nr))
            if key in entries:
                sys.exit(f"{path}:{lineno}: {arch} {nr} repeated")
            args = []
            for pos, slot in enumerate(slots):
                if slot != "-":
                    n, size = slot.split(":")
                    args.append((pos, n, int(size)))
            entries[key] = (name, args)
    return entries


def read_meanings(path):
    """(arch, Kafel syscall name, Kafel arg name) -> kernel position or None."""
    meanings = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            arch, syscall, arg, pos = line.split()
            for a in ["x86_64", "aarch64"] if arch == "64" else [arch]:
                key = (a, syscall, arg)
                if key in meanings:
                    sys.exit(f"{path}:{lineno}: {a} {syscall} {arg} repeated")
                meanings[key] = None if pos == "-" else int(pos)
    return meanings


def merge_kafel(where, kname, kernel, kafel, meanings, kafel_arch, used):
    """Argument slots [[names], size] and the Kafel names that move or have no
    kernel counterpart [(name, Kafel's position)]."""
    slots = [[[n], s] for n, s in kernel] if kernel is not None else []
    diffs = []
    kernel_pos = {n: i for i, (n, _) in enumerate(kernel or [])}
    moved_by_name = any(n in kernel_pos and kernel_pos[n] != p for p, n, _ in kafel)
    for pos, n, size in kafel:
        key = (kafel_arch, kname, n)
        if key in meanings:
            used.add(key)
            target = meanings[key]
            if target is None or target != pos:
                diffs.append((n, pos))
            if target is None:
                target = pos
        elif n in kernel_pos:
            target = kernel_pos[n]
            if target != pos:
                diffs.append((n, pos))
        else:
            if moved_by_name:
                sys.exit(
                    f"{where}: Kafel's {kname} puts some names elsewhere than the kernel; "
                    f"say in kafel_arg_meanings.txt what its '{n}' (position {pos}) means"
                )
            target = pos
        if kernel is None:
            while len(slots) <= target:
                slots.append([[], 0])
            if slots[target][1] == 0:
                slots[target][1] = min(size, 4) if kafel_arch in BITS32 else size
        elif target >= len(slots):
            sys.exit(f"{where}: Kafel's {kname} '{n}' is past the kernel's {len(slots)} arguments")
        if n not in slots[target][0]:
            slots[target][0].append(n)
    seen = {}
    for i, (names, _) in enumerate(slots):
        for n in names:
            if n in seen:
                sys.exit(f"{where}: {kname}: name '{n}' means arguments {seen[n]} and {i}")
            seen[n] = i
    # Kafel leaves no gaps inside a list the kernel does not name; an unnamed
    # position still needs a size for the slots after it.
    for s in slots:
        if s[1] == 0:
            s[1] = 4 if kafel_arch in BITS32 else 8
    return slots, diffs


def generate(module, table, abis, args, kafel_arch, overrides, kafel_names, kafel_args, meanings, used):
    rows = read_rows(os.path.join(HERE, "data", table), abis)
    primary = {name for _, name, _ in rows}
    names = []  # (name, index)
    missing = []
    args = dict(args)
    for o in overrides:
        args.update(read_args(os.path.join(HERE, "data", o)))
    if kafel_arch in BITS32:
        args = {
            e: None if a is None else [(n, min(sz, 4)) for n, sz in a]
            for e, a in args.items()
        }
    out = []
    out.append(f"// @generated by tools/gen_tables.py from tools/data/{table},")
    out.append(f"// syscall_args.txt{''.join(', ' + o for o in overrides)} (Linux kernel sources),")
    out.append("// kafel_args.txt, kafel_arg_meanings.txt and kafel_names_32.txt (C Kafel's")
    out.append("// names). Do not edit by hand.")
    out.append("")
    out.append("use super::{Arg, Syscall};")
    out.append("")
    out.append("/// Every syscall of the architecture, sorted by number.")
    out.append("pub(crate) static SYSCALLS: &[Syscall] = &[")
    for idx, (nr, name, entry) in enumerate(rows):
        names.append((name, idx))
        arglist = None
        if entry and entry != "sys_ni_syscall":
            arglist = args.get(entry)
            if entry not in args:
                missing.append(entry)
            alias = entry[len("sys_"):] if entry.startswith("sys_") else None
            if alias and alias != name and alias not in primary:
                names.append((alias, idx))
        if name.startswith("_") and name.lstrip("_") not in primary:
            names.append((name.lstrip("_"), idx))
        diffs = []
        slots = None if arglist is None else [[[n], s] for n, s in arglist]
        kafel = kafel_args.get((kafel_arch, nr))
        if kafel is not None and kafel[1]:
            slots, diffs = merge_kafel(
                f"{module} {nr}", kafel[0], arglist, kafel[1], meanings, kafel_arch, used
            )
        if slots is None:
            a = "None"
        else:
            inner = ", ".join(
                "Arg { names: &[" + ", ".join(f'"{n}"' for n in ns) + f"], size: {s} }}"
                for ns, s in slots
            )
            a = f"Some(&[{inner}])"
        d = ", ".join(f'("{n}", {p})' for n, p in diffs)
        out.append(
            f'    Syscall {{ nr: {nr}, name: "{name}", args: {a}, kafel_diffs: &[{d}] }},'
        )
    out.append("];")
    out.append("")
    if kafel_arch in BITS32:
        index_of = {nr: idx for idx, (nr, _, _) in enumerate(rows)}
        for (arch, name), nr in sorted(kafel_names.items()):
            if arch != kafel_arch:
                continue
            if nr not in index_of:
                sys.exit(f"{module}: Kafel name {name} = {nr}: no such syscall")
            before = [i for n, i in names if n == name]
            names = [(n, i) for n, i in names if n != name]
            names.append((name, index_of[nr]))
            was = rows[before[0]][0] if before else None
            print(f"{module}: {name} -> {nr} as in C Kafel (rules gave {was})")
    # Every syscall name C Kafel knows is accepted: a Kafel name the rules above
    # do not give (aarch64 "sync_file_range2") is an alias of Kafel's number.
    index_of = {nr: idx for idx, (nr, _, _) in enumerate(rows)}
    known = {n: i for n, i in names}
    for (arch, nr), (kname, _) in sorted(kafel_args.items()):
        if arch != kafel_arch:
            continue
        if nr not in index_of:
            sys.exit(f"{module}: C Kafel's {kname} = {nr}: no such syscall in {table}")
        if kname not in known:
            names.append((kname, index_of[nr]))
            known[kname] = index_of[nr]
            print(f"{module}: {kname} -> {nr} (C Kafel's name)")
        elif known[kname] != index_of[nr]:
            sys.exit(f"{module}: C Kafel's {kname} is {nr}, here {rows[known[kname]][0]}")
    names = sorted(set(names))
    for (a, _), (b, _) in zip(names, names[1:]):
        if a == b:
            sys.exit(f"{module}: name {a} maps to two syscalls")
    out.append("/// Every accepted name (kernel names, Kafel's entry-point spellings and")
    out.append("/// C Kafel's names),")
    out.append("/// sorted by name, with the index of its syscall in `SYSCALLS`.")
    out.append("pub(crate) static NAMES: &[(&str, u16)] = &[")
    for name, idx in names:
        out.append(f'    ("{name}", {idx}),')
    out.append("];")
    out.append("")
    with open(os.path.join(OUT, f"{module}.rs"), "w") as f:
        f.write("\n".join(out))
    for m in missing:
        print(f"{module}: no argument names for {m}", file=sys.stderr)
    print(f"{module}: {len(rows)} syscalls, {len(names)} names")


def main():
    args = read_args(os.path.join(HERE, "data", "syscall_args.txt"))
    kafel_names = read_kafel_names(os.path.join(HERE, "data", "kafel_names_32.txt"))
    kafel_args = read_kafel_args(os.path.join(HERE, "data", "kafel_args.txt"))
    meanings = read_meanings(os.path.join(HERE, "data", "kafel_arg_meanings.txt"))
    used = set()
    for module, table, abis, kafel_arch, overrides in ARCHES:
        generate(
            module, table, abis, args, kafel_arch, overrides, kafel_names, kafel_args, meanings, used
        )
    for key in sorted(set(meanings) - used):
        sys.exit(f"kafel_arg_meanings.txt: {' '.join(key)} matches no Kafel argument")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Attributes the guest code QEMU's TCG translated in one run.

Usage: translated.py IN_ASM_LOG KALLSYMS

IN_ASM_LOG is what `qemu-system-x86_64 -d in_asm -D FILE` wrote: every
translation block, once, as it was translated. KALLSYMS is the guest's
/proc/kallsyms (same kernel layout: a clone of the same template). Prints how
many guest instructions were translated, by owner (the kernel, each module,
user space) and by phase of a `kestrel run`, and the kernel functions that
weigh most. Under TCG, translating is most of what a fresh QEMU process does:
this count is the work a warm start cannot save from one process to the next.
"""
import bisect
import collections
import re
import sys

USER_TOP = 0x800000000000
# The first translation of these marks the start of a phase (they run once per
# run: SETUP's first system call, the program's exec, the program's exit).
PHASES = [("restore, greeting, SETUP request", None),
          ("SETUP: hostname, clock, entropy, mounts", "__x64_sys_sethostname"),
          ("program: spawn", "copy_process"),
          ("program: exec, loader, run", "load_elf_binary"),
          ("program: exit, result, teardown", "do_group_exit")]


def load_symbols(path):
    syms = []
    for line in open(path):
        f = line.split()
        if len(f) < 3 or f[1] not in "tTwW":
            continue
        addr = int(f[0], 16)
        if addr:
            syms.append((addr, f[2], f[3].strip("[]") if len(f) > 3 else "kernel"))
    syms.sort()
    return syms


def blocks(path):
    """Yields (first guest address, instruction count) per translation block."""
    start, count = None, 0
    for line in open(path, errors="replace"):
        if line.startswith("IN:"):
            if start is not None:
                yield start, count
            start, count = None, 0
            continue
        m = re.match(r"0x([0-9a-f]+):", line)
        if m:
            if start is None:
                start = int(m.group(1), 16)
            count += 1
    if start is not None:
        yield start, count


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    syms = load_symbols(sys.argv[2])
    if not syms:
        sys.exit(sys.argv[2] + " has no kernel addresses (read it as root in the guest)")
    addrs = [s[0] for s in syms]
    entry = {a: name for a, name, _ in syms}
    owners, functions, phases = collections.Counter(), collections.Counter(), collections.Counter()
    phase = 0
    total = tbs = 0
    for start, n in blocks(sys.argv[1]):
        name = entry.get(start)
        for i, (_, marker) in enumerate(PHASES):
            if marker and name == marker and i > phase:
                phase = i
        if start < USER_TOP:
            owner = "user space (agent, program, libraries)"
        else:
            i = bisect.bisect_right(addrs, start) - 1
            owner = "kernel" if i < 0 or syms[i][2] == "kernel" else "module " + syms[i][2]
            if owner == "kernel" and i >= 0:
                functions[syms[i][1]] += n
        owners[owner] += n
        phases[phase] += n
        total += n
        tbs += 1
    if not total:
        sys.exit("no translation blocks in " + sys.argv[1])
    print(f"guest instructions translated: {total} in {tbs} blocks")
    print("by phase:")
    for i, (label, _) in enumerate(PHASES):
        print(f"  {phases[i]:7d}  {100 * phases[i] / total:5.1f}%  {label}")
    print("by owner:")
    for owner, n in owners.most_common(8):
        print(f"  {n:7d}  {100 * n / total:5.1f}%  {owner}")
    print("heaviest kernel functions:")
    for fn, n in functions.most_common(12):
        print(f"  {n:7d}  {100 * n / total:5.1f}%  {fn}")


if __name__ == "__main__":
    main()

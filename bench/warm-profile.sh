#!/usr/bin/env bash
# Where a warm start's guest time goes, counted exactly rather than timed:
# the guest instructions that TCG translates during one warm
# `kestrel run -- /bin/true`, by phase and by owner (bench/translated.py).
# Under TCG a fresh QEMU process translates every guest code path it runs, and
# translating is most of its CPU time, so this count is the part of a warm
# start that no snapshot can carry from one run to the next
# (docs/warm-starts.md, "Where the time goes"). Not part of `./dev bench`.
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/kestrel-profile-XXXXXX)
export KESTREL_RUNTIME_DIR=$tmp/rt
trap '"$KESTREL" destroy --all >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
# QEMU logging each translation block as it translates it. Being another QEMU
# binary, it gets a template of its own.
cat >"$tmp/qemu" <<EOF
#!/bin/sh
exec qemu-system-x86_64 -d in_asm -D "$tmp/in_asm.\$\$" "\$@"
EOF
chmod +x "$tmp/qemu"
export KESTREL_QEMU=$tmp/qemu

"$KESTREL" run -q -- /bin/true  # builds the template; not counted
rm -f "$tmp"/in_asm.*
"$KESTREL" run -q -- /bin/true  # the warm run counted
log=$(ls "$tmp"/in_asm.*)
# The kernel's symbols, from a clone of the same template: same layout.
"$KESTREL" run -q -- /bin/cat /proc/kallsyms >"$tmp/kallsyms"
python3 "$here/translated.py" "$log" "$tmp/kallsyms"

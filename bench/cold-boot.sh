#!/usr/bin/env bash
# Cold boot, side by side in one run: a raw QEMU boot of the same kernel (a
# hand-made busybox initramfs that mounts the host root over 9p and runs
# /bin/true there) against `kestrel run -- /bin/true` (deployment, boot,
# setup, exec, teardown). Prints medians and their ratio. Target: <= 1.1.
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export KESTREL_RUNTIME_DIR=$tmp/rt
make_raw_initramfs "$tmp/raw.cpio"
"$KESTREL" run -q --cold -- /bin/true  # warm the initramfs cache; not measured

for i in $(seq "$ROUNDS"); do
  raw_boot "$tmp/raw.cpio" "$tmp/raw.log" >>"$tmp/raw.times"
  start=$(now)
  "$KESTREL" run -q --cold -- /bin/true
  elapsed "$start" >>"$tmp/kestrel.times"
  echo >>"$tmp/kestrel.times"
  echo >>"$tmp/raw.times"
done
raw=$(grep . "$tmp/raw.times" | median)
kes=$(grep . "$tmp/kestrel.times" | median)
echo "cold boot to a finished /bin/true, median of $ROUNDS (TCG unless KVM is usable):"
printf '  raw QEMU + busybox init          %6.3f s\n' "$raw"
printf '  kestrel run -- /bin/true (cold)  %6.3f s\n' "$kes"
echo "  ratio kestrel/raw                $(ratio "$kes" "$raw")   (target <= 1.10)"

#!/usr/bin/env bash
# Warm starts, side by side in one run on the same kernel and initramfs:
#   - a raw QEMU cold boot to a finished /bin/true (hand-made busybox initramfs),
#   - kestrel run --cold -- /bin/true   (boot from scratch),
#   - kestrel run -- /bin/true          (restore a clone of the template),
# their medians and ratios (target: warm <= 0.10 x raw; goal 0.07 x); then 32
# trivial runs with 2 slots against the ideal 32 x warm / 2 (target <= 1.2 x),
# and the host memory of an idle clone (PSS, target <= 96 MiB).
source "$(dirname "$0")/lib.sh"

tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
export KESTREL_RUNTIME_DIR=$tmp/rt
trap '"$KESTREL" destroy --all >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
make_raw_initramfs "$tmp/raw.cpio"
"$KESTREL" run -q -- /bin/true  # builds the initramfs and the template; not measured

for i in $(seq "$ROUNDS"); do
  raw_boot "$tmp/raw.cpio" "$tmp/raw.log" >>"$tmp/raw.times"
  echo >>"$tmp/raw.times"
  start=$(now)
  "$KESTREL" run -q --cold -- /bin/true
  elapsed "$start" >>"$tmp/cold.times"
  echo >>"$tmp/cold.times"
  start=$(now)
  "$KESTREL" run -q -- /bin/true
  elapsed "$start" >>"$tmp/warm.times"
  echo >>"$tmp/warm.times"
done
raw=$(grep . "$tmp/raw.times" | median)
cold=$(grep . "$tmp/cold.times" | median)
warm=$(grep . "$tmp/warm.times" | median)

runs=32
start=$(now)
seq "$runs" | KESTREL_SLOTS=2 xargs -P "$runs" -I{} "$KESTREL" run -q -- /bin/true
burst=$(elapsed "$start")
ideal=$(awk -v w="$warm" -v n="$runs" 'BEGIN { printf "%.3f", n * w / 2 }')

"$KESTREL" run -q --keep always -- /bin/true
dir=$(find "$KESTREL_RUNTIME_DIR" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | head -1)
pid=$(cat "$dir"/*/qemu.pid)
sleep 2  # idle
pss=$(awk '/^Pss:/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/smaps_rollup")
"$KESTREL" destroy -f "$dir"

echo "to a finished /bin/true, median of $ROUNDS (TCG unless KVM is usable):"
printf '  raw QEMU cold boot + busybox init   %6.3f s\n' "$raw"
printf '  kestrel run --cold -- /bin/true     %6.3f s   %s x raw\n' "$cold" "$(ratio "$cold" "$raw")"
printf '  kestrel run -- /bin/true (warm)     %6.3f s   %s x raw   (target <= 0.10, goal 0.07)\n' "$warm" \
  "$(ratio "$warm" "$raw")"
printf '%s trivial warm runs, 2 slots:        %6.3f s   %s x the ideal %s s (target <= 1.2)\n' "$runs" "$burst" \
  "$(ratio "$burst" "$ideal")" "$ideal"
printf 'idle clone, host memory (PSS):       %6.1f MiB (target <= 96)\n' "$pss"

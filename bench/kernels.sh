#!/usr/bin/env bash
# Debian's kernel against the lean one (`kestrel kernel build`,
# docs/kernels.md), side by side in one run, rounds interleaved:
#   - a raw QEMU cold boot to a finished /bin/true (hand-made busybox
#     initramfs; Debian's loads its virtio and 9p modules, the lean one has
#     them built in),
#   - kestrel run --cold -- /bin/true,
#   - kestrel run -- /bin/true (warm),
#   - kestrel run -- python3 -c 'import json' (warm),
# their medians, lean / Debian ratios, and the warm lean /bin/true against the
# raw Debian cold boot (target <= 0.08 x; goal 0.07 x).
# Needs both kernels cached: `kestrel kernel fetch` and `kestrel kernel build`.
source "$(dirname "$0")/lib.sh"

debian=$("$KESTREL" kernel ls | awk -F'\t' '$3 ~ /^debian:/ { print $1; exit }')
lean=$("$KESTREL" kernel ls | awk -F'\t' '$3 ~ /^lean:/ { print $1; exit }')
[ -n "$debian" ] || { echo "no Debian kernel cached: run $KESTREL kernel fetch" >&2; exit 1; }
[ -n "$lean" ] || { echo "no lean kernel cached: run $KESTREL kernel build" >&2; exit 1; }
lean_vmlinux=$("$KESTREL" kernel ls | awk -F'\t' -v r="$lean" '$1 == r { print $2 }')

tmp=$(mktemp -d /tmp/kestrel-bench-XXXXXX)
export KESTREL_RUNTIME_DIR=$tmp/rt
trap '"$KESTREL" destroy --all >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
make_raw_initramfs "$tmp/raw.cpio"
make_raw_initramfs "$tmp/raw-lean.cpio" "$(dirname "$lean_vmlinux")"
# The initramfs and template of each kernel; not measured.
"$KESTREL" run -q --kernel "$debian" -- /bin/true
"$KESTREL" run -q --kernel "$lean" -- /bin/true

# time_run FILE CMD...: appends the seconds CMD took to FILE.
time_run() {
  local file=$1 start
  shift
  start=$(now)
  "$@" >/dev/null
  elapsed "$start" >>"$tmp/$file"
  echo >>"$tmp/$file"
}

for _ in $(seq "$ROUNDS"); do
  raw_boot "$tmp/raw.cpio" "$tmp/raw.log" >>"$tmp/raw-debian"
  echo >>"$tmp/raw-debian"
  raw_boot "$tmp/raw-lean.cpio" "$tmp/raw.log" "$lean_vmlinux" >>"$tmp/raw-lean"
  echo >>"$tmp/raw-lean"
  for k in debian lean; do
    kernel=${!k}
    time_run "cold-$k" "$KESTREL" run -q --cold --kernel "$kernel" -- /bin/true
    time_run "warm-$k" "$KESTREL" run -q --kernel "$kernel" -- /bin/true
    time_run "python-$k" "$KESTREL" run -q --kernel "$kernel" -- python3 -c 'import json'
  done
done
m() { grep . "$tmp/$1" | median; }

echo "Debian's kernel ($debian) against the lean one ($lean),"
echo "median of $ROUNDS (TCG unless KVM is usable):"
printf '  %-44s %8s %8s %8s\n' "" Debian lean lean/Debian
for row in "raw:raw QEMU cold boot + busybox init" "cold:kestrel run --cold -- /bin/true" \
  "warm:kestrel run -- /bin/true (warm)" "python:kestrel run -- python3 -c 'import json'"; do
  key=${row%%:*}
  d=$(m "$key-debian")
  l=$(m "$key-lean")
  printf '  %-44s %7.3fs %7.3fs %8s\n' "${row#*:}" "$d" "$l" "$(ratio "$l" "$d")"
done
raw=$(m raw-debian)
printf 'warm /bin/true against the raw Debian cold boot: Debian %s x, lean %s x (target <= 0.08, goal 0.07)\n' \
  "$(ratio "$(m warm-debian)" "$raw")" "$(ratio "$(m warm-lean)" "$raw")"

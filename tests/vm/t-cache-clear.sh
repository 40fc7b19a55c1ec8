# `kestrel cache clear` while runs start (issue 9, item 5): files a run uses
# are never removed from under it, a kept clone outlives its template, and a
# run that cannot boot for a reason of its own (a runtime dir too long for a
# socket path) leaves the shared template alone.
# kestrel-test-timeout: 600
source "$(dirname "$0")/lib.sh"
use_own_cache

templates() { find "$KESTREL_CACHE_DIR/templates" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null; }

"$KESTREL" run -q --keep never -- /bin/true  # initramfs and template exist

# A runtime dir too long for QEMU's socket paths: the run fails, saying so;
# the good shared template stays.
tdir=$(templates)
[ -n "$tdir" ] || fail "no template"
inode=$(stat -c %i "$tdir/memory")
long=$work/$(printf 'r%.0s' $(seq 100))
mkdir -p "$long"
set +e
KESTREL_RUNTIME_DIR=$long "$KESTREL" run --keep never -- /bin/true >"$work/out" 2>"$work/err"
status=$?
set -e
# Checked before any QEMU starts: nothing is even tried.
expect_eq "status with a runtime dir too long for sockets" 125 "$status"
grep -q 'bytes long; the limit is 107 (use a shorter KESTREL_RUNTIME_DIR)' "$work/err" ||
  fail "unclear failure: $(cat "$work/err")"
expect_eq "template after the long runtime dir" "$tdir $inode" "$(templates) $(stat -c %i "$tdir/memory")"
leaked=$(pgrep -f "qemu-system.*$long" || true)
[ -z "$leaked" ] || { kill -9 $leaked; fail "QEMU left behind by the long runtime dir: $leaked"; }

# Six runs at once, and `cache clear` over and over while they start (before
# the fix: "qemu: error reading initrd", 5 or 6 of 6 failed).
for i in $(seq 6); do
  "$KESTREL" run --keep never -- /bin/true >"$work/out.$i" 2>"$work/err.$i" &
  echo $! >>"$work/runs"
done
while kill -0 $(cat "$work/runs") 2>/dev/null; do
  "$KESTREL" cache clear >>"$work/clear.log" 2>&1 || fail "cache clear failed: $(tail -3 "$work/clear.log")"
  sleep 0.1
done
failed=0
for pid in $(cat "$work/runs"); do wait "$pid" || failed=$((failed + 1)); done
[ "$failed" -eq 0 ] || fail "$failed of 6 runs failed while the cache was cleared: $(cat "$work"/err.*)"
grep -q 'in use' "$work/clear.log" || echo "note: no clear met a file in use this time" >&2
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"

# A kept clone runs on after its template is removed: its memory is mapped.
start_kept_vm  # builds the template again if the clears removed it
expect_eq "kept VM start" warm "$(vm_start "$vm_dir")"
"$KESTREL" cache clear >"$work/clear.out"
expect_eq "templates after clear" 0 "$(templates | wc -l)"
# Touch much of the guest's memory (pages it never wrote come from the template).
out=$("$KESTREL" exec "$vm_name" -f "$vm_dir" -- /bin/sh -c \
  'cat /proc/meminfo >/dev/null; dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>/dev/null; ls -R /sys >/dev/null; echo alive')
expect_eq "kept clone after cache clear" alive "$out"
"$KESTREL" destroy -f "$vm_dir"

echo PASS

# A guest that floods its console: console.log stays within
# KESTREL_CONSOLE_LOG_MAX, keeps its start (the boot, the agent's ready line)
# and the latest output, and says how much was dropped between them. The
# process that writes it (`kestrel-agent console-log`) lives exactly as long
# as the VM. A bad cap is refused before any VM starts.
source "$(dirname "$0")/lib.sh"

status=0
KESTREL_CONSOLE_LOG_MAX=12X "$KESTREL" run -- /bin/true 2>"$work/err" || status=$?
expect_eq "status of a run with a bad cap" 125 "$status"
grep -q "KESTREL_CONSOLE_LOG_MAX: '12X' is not a size" "$work/err" || fail "no word about the cap: $(cat "$work/err")"

export KESTREL_CONSOLE_LOG_MAX=256K
cap=$((256 * 1024))
start_kept_vm
log=$vm_dir/$vm_name/console.log
loggers() { pgrep -f "kestrel-agent console-log [0-9]* $vm_dir/" || true; }
[ -n "$(loggers)" ] || fail "no console logger runs for the kept VM"

# About 1.3 MB through the emulated UART (a few seconds under TCG).
"$KESTREL" exec "$vm_name" -f "$vm_dir" -- /bin/sh -c '
  i=0
  while [ $i -lt 12000 ]; do
    echo "flood line $i: the guest writes to its console faster than anyone reads it ......................"
    i=$((i + 1))
  done >/dev/ttyS0
  echo flood-done >/dev/ttyS0' || fail "the flood did not run"
for _ in $(seq 100); do
  grep -q '^flood-done' "$log" 2>/dev/null && break
  sleep 0.2
done
tr -d '\r' <"$log" >"$work/log"
grep -q '^flood-done' "$work/log" || fail "the latest output is not in console.log: $(tail -3 "$work/log")"
size=$(stat -c %s "$log")
[ "$size" -le "$cap" ] || fail "console.log is $size bytes, past its cap of $cap"
grep -q "kestrel-agent .* ready .* after boot" "$work/log" || fail "console.log lost its start (the agent's boot line)"
grep -q '^flood line 11999: ' "$work/log" || fail "console.log lacks the last flood line"
grep -q '^\[kestrel: [0-9]* bytes of console output dropped here' "$work/log" ||
  fail "console.log does not say what it dropped"
grep -q '^flood line 6000: ' "$work/log" && fail "console.log kept the middle of the flood"

"$KESTREL" destroy -f "$vm_dir"
for _ in $(seq 50); do
  [ -z "$(loggers)" ] && break
  sleep 0.1
done
[ -z "$(loggers)" ] || fail "the console logger outlived its VM: $(loggers)"
echo PASS

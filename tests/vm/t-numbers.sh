# Numbers at their limits (issue 9): a time to live that cannot be represented
# expires nothing, huge or odd timeouts are rejected up front with a readable
# message, the memory minimum boots, and more vCPUs than TCG can boot are
# refused before a boot is tried.
source "$(dirname "$0")/lib.sh"

# Exit status and stderr of a kestrel command: sets `status`, stderr in $work/err.
try() {
  status=0
  "$KESTREL" "$@" >"$work/out" 2>"$work/err" || status=$?
}

# The smallest memory allowed boots (cold: no template of this size in the cache).
start_kept_vm --cold --mem 128

# KESTREL_KEEP_TTL=inf once overflowed: every kept VM was "expired" and the
# next command destroyed it. Now the sweep warns and expires nothing.
for ttl in inf nan 1e30s zzz; do
  KESTREL_KEEP_TTL=$ttl try exec "$vm_name" -f "$vm_dir" -- true
  expect_eq "status of a command with KESTREL_KEEP_TTL=$ttl" 0 "$status"
  [ -e "$vm_dir" ] || fail "KESTREL_KEEP_TTL=$ttl destroyed the kept VM"
  grep -q "warning: KESTREL_KEEP_TTL=$ttl: .*kept VMs do not expire" "$work/err" || fail "no warning: $(cat "$work/err")"
done
KESTREL_KEEP_TTL=inf try gc
expect_eq "gc with a bad TTL" 1 "$status"
grep -q "KESTREL_KEEP_TTL=inf: 'inf' is not a time span" "$work/err" || fail "gc's message: $(cat "$work/err")"
[ -e "$vm_dir" ] || fail "gc with a bad TTL destroyed the kept VM"

# doctor reports the bad TTL and every bad setting, not only the first.
KESTREL_KEEP_TTL=zzz KESTREL_CPUS=0 KESTREL_TIMEOUT=1e16 try doctor
expect_eq "doctor with bad settings" 1 "$status"
grep -q "^FAIL  ttl      KESTREL_KEEP_TTL=zzz: " "$work/out" || fail "doctor is silent on the TTL: $(cat "$work/out")"
grep -q "^FAIL  config   KESTREL_CPUS=0: 0 is out of range" "$work/out" || fail "no cpus line: $(cat "$work/out")"
grep -q "^FAIL  config   KESTREL_TIMEOUT=1e16: '1e16' is out of range" "$work/out" || fail "no timeout: $(cat "$work/out")"

# exec --timeout: huge, zero, negative, nan, inf are usage errors with a short message.
for t in 1e300 1e16 0 -1 nan inf; do
  try exec "$vm_name" -f "$vm_dir" --timeout "$t" -- true
  expect_eq "exec --timeout $t" 2 "$status"
  grep -q "^kestrel: error: --timeout: '$t' is not a number of seconds greater than 0 and at most 1000000000" \
    "$work/err" || fail "exec --timeout $t: $(cat "$work/err")"
done
expect_eq "exec with the longest timeout" hi "$("$KESTREL" exec "$vm_name" -f "$vm_dir" --timeout 1000000000 -- echo hi)"
try exec "$vm_name" -f "$vm_dir" --timeout 0.5 -- sleep 30
expect_eq "exec --timeout 0.5" 124 "$status"

# run: 1e16 once killed the program at once with 124; from every source it is refused.
try run --timeout 1e16 -- /bin/true
expect_eq "run --timeout 1e16" 2 "$status"
KESTREL_TIMEOUT=9e12 try run -- /bin/true
expect_eq "KESTREL_TIMEOUT=9e12" 125 "$status"
grep -q "KESTREL_TIMEOUT=9e12: '9e12' is out of range" "$work/err" || fail "message: $(cat "$work/err")"
try run --mem 64 -- /bin/true
expect_eq "run --mem 64" 2 "$status"

# More vCPUs than TCG boots on this host: refused before anything boots.
max=$((4 * $(nproc)))
if [ "$max" -lt 64 ] && ! [ -e /sys/module/kvm_intel ] && ! [ -e /sys/module/kvm_amd ]; then
  try run --cpus $((max + 1)) -- /bin/true
  expect_eq "run --cpus $((max + 1))" 125 "$status"
  grep -q "use --cpus $max or fewer" "$work/err" || fail "message: $(cat "$work/err")"
fi

"$KESTREL" destroy -f "$vm_dir"
[ -z "$(our_qemus)" ] || fail "QEMU left: $(our_qemus)"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

# `kestrel run --timeout 3 -- sleep 100`: the program is killed after 3 s,
# kestrel returns 124 within boot time + 5 s and says so; the VM is kept
# per --keep (on-failure by default, so kept; never: gone).
source "$(dirname "$0")/lib.sh"

start=$(now_ms)
status=0
KESTREL_TRACE=1 "$KESTREL" run --mem 256 --timeout 3 -- sleep 100 2>"$work/err" || status=$?
took=$(($(now_ms) - start))
expect_eq "status after --timeout" 124 "$status"
grep -qx 'kestrel: error: sleep ran past --timeout 3 s and was killed' "$work/err" ||
  fail "no timeout message: $(cat "$work/err")"
boot=$(sed -n 's/^kestrel: trace \([0-9]*\)\.[0-9] ms  setup done$/\1/p' "$work/err")
[ -n "$boot" ] || fail "no boot time in the trace: $(cat "$work/err")"
echo "booted in $boot ms, returned after $took ms"
[ $((took - boot)) -le 5000 ] || fail "returned $((took - boot)) ms after boot (limit: 5000)"
grep -q '^kestrel: test failed (exit status 124); VM .* remains running' "$work/err" ||
  fail "the VM was not kept (--keep on-failure): $(cat "$work/err")"
expect_eq "kept VMs" 1 "$(our_qemus | wc -l)"
"$KESTREL" destroy --all

status=0
"$KESTREL" run -q --mem 256 --keep never --timeout 1 -- sleep 100 2>"$work/err" || status=$?
expect_eq "status after --timeout, --keep never" 124 "$status"
[ -z "$(our_qemus)" ] || fail "--keep never left QEMU running"
[ -z "$(deployments)" ] || fail "--keep never left deployments: $(deployments)"
echo PASS

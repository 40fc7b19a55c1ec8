# A scripted `kestrel serial` session (stdin from a pipe): the console is a
# root shell of the VM, the session ends by itself after a quiet period with
# status 0, and console.log holds everything the console printed since boot.
source "$(dirname "$0")/lib.sh"
start_kept_vm --mem 256

status=0
out=$(printf 'hostname\n' | "$KESTREL" serial "$vm_name" -f "$vm_dir") || status=$?
expect_eq "status of a scripted serial session" 0 "$status"
echo "$out" | tr -d '\r' | grep -qx "$vm_name" || fail "hostname not answered on the console: $out"

# Only one console session at a time.
(sleep 3 | "$KESTREL" serial "$vm_name" -f "$vm_dir" >/dev/null) &
sleep 0.5
status=0
"$KESTREL" serial "$vm_name" -f "$vm_dir" </dev/null 2>"$work/err" || status=$?
[ "$status" -ne 0 ] || fail "a second console session was allowed"
grep -q "in use" "$work/err" || fail "no reason for refusing the second session: $(cat "$work/err")"
wait

log=$vm_dir/$vm_name/console.log
grep -q "kestrel-agent .* ready .* after boot" "$log" || fail "console.log lacks the agent's boot line"
grep -q "^kestrel: set up as $vm_name" "$log" || fail "console.log lacks the setup line"
tr -d '\r' <"$log" | grep -qx "$vm_name" || fail "console.log lacks the session's output"

"$KESTREL" serial --help | grep -q 'Ctrl-]' || fail "--help does not name the detach key"
"$KESTREL" destroy -f "$vm_dir"
echo PASS

# A scripted `kestrel serial` session (stdin from a pipe): the console is a
# root shell of the VM, the session ends by itself after a quiet period with
# status 0, and console.log holds everything the console printed since boot.
source "$(dirname "$0")/lib.sh"
start_kept_vm --mem 256

# An exec that opens the console makes it its controlling terminal and hangs
# it up when it exits, the agent's watch for input included: the agent must
# not take that for input.
"$KESTREL" exec "$vm_name" 'stty size </dev/ttyS0' -f "$vm_dir" >/dev/null

# Attaching starts the shell with one prompt (the newline kestrel sends to
# wake it is not answered with a second one), on a 24x80 console.
out=$("$KESTREL" serial "$vm_name" -f "$vm_dir" </dev/null | tr -d '\r')
expect_eq "prompts on attach" 1 "$(grep -o "$vm_name:# " <<<"$out" | wc -l)"
out=$(printf 'stty size\n' | "$KESTREL" serial "$vm_name" -f "$vm_dir" | tr -d '\r')
grep -qx '24 80' <<<"$out" || fail "the console has no window size: $out"

# Input typed ahead while the shell is busy runs once it is ready, and the
# scripted session waits for it instead of ending in the silence.
out=$(printf 'sleep 2\necho typed-$((6*7))\n' | "$KESTREL" serial --quiet-ms 300 "$vm_name" -f "$vm_dir" | tr -d '\r')
grep -q 'typed-42' <<<"$out" || fail "input typed ahead of a busy shell did not run: $out"

status=0
out=$(printf 'hostname\n' | "$KESTREL" serial "$vm_name" -f "$vm_dir") || status=$?
expect_eq "status of a scripted serial session" 0 "$status"
echo "$out" | tr -d '\r' | grep -qx "$vm_name" || fail "hostname not answered on the console: $out"

# Only one console session at a time. The first holds its input open (a fifo)
# until the second has been refused, and the second starts only once the first
# is attached (its prompt came back): no guess of how long attaching takes
# under load.
mkfifo "$work/first-in"
"$KESTREL" serial "$vm_name" -f "$vm_dir" <"$work/first-in" >"$work/first-out" 2>&1 &
first=$!
exec 3>"$work/first-in"
for _ in $(seq 300); do
  grep -q "$vm_name:# " "$work/first-out" && break
  kill -0 "$first" 2>/dev/null || fail "the first console session ended early: $(cat "$work/first-out")"
  sleep 0.1
done
grep -q "$vm_name:# " "$work/first-out" || fail "the first console session never attached: $(cat "$work/first-out")"
status=0
"$KESTREL" serial "$vm_name" -f "$vm_dir" </dev/null 2>"$work/err" || status=$?
[ "$status" -ne 0 ] || fail "a second console session was allowed"
grep -q "in use" "$work/err" || fail "no reason for refusing the second session: $(cat "$work/err")"
exec 3>&-
status=0
wait "$first" || status=$?
expect_eq "status of the first console session" 0 "$status"

log=$vm_dir/$vm_name/console.log
grep -q "kestrel-agent .* ready .* after boot" "$log" || fail "console.log lacks the agent's boot line"
grep -q "^kestrel: set up as $vm_name" "$log" || fail "console.log lacks the setup line"
tr -d '\r' <"$log" | grep -qx "$vm_name" || fail "console.log lacks the session's output"

"$KESTREL" serial --help | grep -q 'Ctrl-]' || fail "--help does not name the detach key"

# On a terminal (script(1)) the console gets the terminal's window size.
out=$( (sleep 4; printf 'stty size\r'; sleep 3; printf '\035') |
  script -qec "stty rows 33 cols 99; $KESTREL serial $vm_name -f $vm_dir" /dev/null | tr -d '\r')
grep -q '^33 99' <<<"$out" || fail "the console did not get the terminal's size: $out"

# A shell still busy when --wait-s runs out: kestrel says so.
status=0
printf 'sleep 4\n' | "$KESTREL" serial --quiet-ms 200 --wait-s 1 "$vm_name" -f "$vm_dir" >/dev/null 2>"$work/err" ||
  status=$?
expect_eq "status of a session that stopped waiting" 0 "$status"
grep -q "still busy after 1 s" "$work/err" || fail "no word about the busy shell: $(cat "$work/err")"
"$KESTREL" destroy -f "$vm_dir"
echo PASS

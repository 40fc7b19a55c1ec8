# A failing run keeps its VM and prints how to debug it; exec, serial and
# destroy work on it.
source "$(dirname "$0")/lib.sh"

set +e
"$KESTREL" run -- /bin/sh -c 'echo failing; exit 3' >"$work/out" 2>"$work/err"
status=$?
set -e
expect_eq "exit status" 3 "$status"
line=$(grep '^kestrel: test failed' "$work/err") || fail "no failure line: $(cat "$work/err")"
[[ $line =~ ^kestrel:\ test\ failed\ \(exit\ status\ 3\)\;\ VM\ ([a-z0-9-]+)\ remains\ running,\ deployment\ dir\ (.+)$ ]] ||
  fail "failure line has the wrong form: $line"
name=${BASH_REMATCH[1]}
dir=${BASH_REMATCH[2]}
grep -q "serial $name -f" "$work/err" || fail "no serial command printed"
grep -q "exec $name 'CMD' -f" "$work/err" || fail "no exec command printed"
grep -q "destroy -f" "$work/err" || fail "no destroy command printed"
[ -n "$(our_qemus)" ] || fail "the failed VM is not running"

set +e
out=$("$KESTREL" exec "$name" 'hostname; exit 4' -f "$dir")
status=$?
set -e
expect_eq "exec output" "$name" "$out"
expect_eq "exec status" 4 "$status"

# argv form
out=$("$KESTREL" exec "$name" -f "$dir" -- /bin/echo a 'b c')
expect_eq "exec argv" "a b c" "$out"

# The serial console is a root shell.
out=$(printf 'echo "uid=$(id -u) on $(hostname)"\n' | "$KESTREL" serial --quiet-ms 3000 "$name" -f "$dir")
echo "$out" | grep -q "uid=0 on $name" || fail "no root shell on the console: $out"

"$KESTREL" destroy -f "$dir"
[ ! -e "$dir" ] || fail "destroy left $dir"
[ -z "$(our_qemus)" ] || fail "destroy left QEMU running"
# Gone: "no such deployment", status 1 (as for a gone NAME).
if "$KESTREL" destroy -f "$dir" 2>"$work/err2"; then fail "destroy -f of a gone dir succeeded"; fi
grep -q "no such deployment" "$work/err2" || fail "destroy -f of a gone dir says: $(cat "$work/err2")"
echo PASS

# `kestrel exec` on a running VM: exit statuses, concurrent execs with their
# own output, --timeout, stdin forwarding, a pseudo-terminal, signals.
source "$(dirname "$0")/lib.sh"
# The run's working directory and environment, which exec reproduces.
mkdir -p "$work/cwd"
cd "$work/cwd"
export KT_EXEC_MARK='a b$c'
start_kept_vm --mem 256
cd /
x() { "$KESTREL" exec "$vm_name" "$@" -f "$vm_dir"; }

# A kept VM (here by --keep always, after a success) gets the same
# ready-to-paste commands as a failed run's.
kept_err=$(cat "$work"/kept-*)
for what in "console:  .* serial $vm_name -f" "command:  .* exec $vm_name 'CMD' -f" "destroy:  .* destroy -f"; do
  grep -q "^kestrel:   $what" <<<"$kept_err" || fail "--keep always printed no '$what' line: $kept_err"
done

# No command: a usage error (2), not a kestrel failure (125).
status=0; "$KESTREL" exec "$vm_name" -f "$vm_dir" 2>"$work/err" || status=$?
expect_eq "exec without a command" 2 "$status"
grep -q "a command is required" "$work/err" || fail "no usage message: $(cat "$work/err")"
status=0; "$KESTREL" exec "$vm_name" 'true' -f "$vm_dir" -- /bin/true 2>/dev/null || status=$?
expect_eq "exec with both forms" 2 "$status"

# Commands run where and as the program ran: its working directory, its
# environment (KESTREL_VM included); --cwd, --env and --clean-env override.
expect_eq "default cwd" "$work/cwd" "$(x pwd)"
expect_eq "KESTREL_VM" "$vm_name" "$(x 'echo $KESTREL_VM')"
expect_eq "the run's variable" 'a b$c' "$(x 'echo "$KT_EXEC_MARK"')"
expect_eq "--cwd" "/tmp" "$(x --cwd /tmp pwd)"
expect_eq "PWD after --cwd" "PWD=/tmp" "$("$KESTREL" exec "$vm_name" --cwd /tmp -f "$vm_dir" -- /usr/bin/env | grep '^PWD=')"
expect_eq "--env" "1 x=y" "$(x --env KT_A=1 --env 'KT_B=x=y' 'echo $KT_A $KT_B')"
expect_eq "--env overrides" "new" "$(x --env KT_EXEC_MARK=new 'echo $KT_EXEC_MARK')"
expect_eq "--clean-env" "/root unset" "$(x --clean-env 'echo $HOME ${KT_EXEC_MARK-unset}')"
status=0; x --cwd /no/such/dir true 2>"$work/err" || status=$?
expect_eq "status for a missing --cwd" 126 "$status"
grep -q "cannot change directory to '/no/such/dir'" "$work/err" || fail "no reason given: $(cat "$work/err")"
status=0; x --env NOEQUALS true 2>/dev/null || status=$?
expect_eq "--env without =" 2 "$status"
# The environment may hold secrets: the state file is the owner's only.
expect_eq "mode of deployment.json" 600 "$(stat -c %a "$vm_dir/deployment.json")"
# A deployment of an older kestrel (no cwd/env recorded): / and a clean environment.
cp -p "$vm_dir/deployment.json" "$work/state.json"
python3 - "$vm_dir/deployment.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
del s["cwd"], s["env"]
open(sys.argv[1], "w").write(json.dumps(s))
PY
expect_eq "old deployment" "/ unset" "$(x 'echo $PWD ${KESTREL_VM-unset}')"
cp -p "$work/state.json" "$vm_dir/deployment.json"

# A warm clone's kernel command line names no other VM (it is its
# template's): the template boots as kestrel-template.
cmdline_name=$(x 'cat /proc/cmdline' | tr ' ' '\n' | sed -n 's/^kestrel.name=//p')
if [ "$(vm_start "$vm_dir")" = warm ]; then
  expect_eq "a clone's kestrel.name" kestrel-template "$cmdline_name"
else
  expect_eq "a cold VM's kestrel.name" "$vm_name" "$cmdline_name"
fi

# Exit statuses propagate.
status=0; x 'exit 4' || status=$?
expect_eq "exit 4" 4 "$status"
status=0; x 'kill -TERM $$' || status=$?
expect_eq "death by SIGTERM" 143 "$status"
status=0; "$KESTREL" exec "$vm_name" -f "$vm_dir" -- /no/such/program 2>"$work/err" || status=$?
expect_eq "missing program" 127 "$status"
grep -q "No such file or directory" "$work/err" || fail "no reason given: $(cat "$work/err")"
expect_eq "argv form" "a b c" "$("$KESTREL" exec "$vm_name" -f "$vm_dir" -- /bin/echo a 'b c')"
status=0; x true 2>"$work/err" || status=$?
expect_eq "true" 0 "$status"
[ ! -s "$work/err" ] || fail "a successful exec printed: $(cat "$work/err")"

# Three execs at once, their output interleaved in time, each gets its own.
for i in 1 2 3; do
  (set +e; x "for j in 1 2 3 4; do echo exec$i-\$j; echo err$i-\$j >&2; sleep 0.2; done; exit $i") \
    >"$work/out.$i" 2>"$work/err.$i" &
done
i=0
for job in $(jobs -p); do
  i=$((i + 1))
  status=0; wait "$job" || status=$?
  expect_eq "status of exec $i" "$i" "$status"
done
for i in 1 2 3; do
  expect_eq "stdout of exec $i" "exec$i-1 exec$i-2 exec$i-3 exec$i-4" "$(tr '\n' ' ' <"$work/out.$i" | sed 's/ $//')"
  expect_eq "stderr of exec $i" "err$i-1 err$i-2 err$i-3 err$i-4" "$(tr '\n' ' ' <"$work/err.$i" | sed 's/ $//')"
done

# --timeout: killed after about 2 s, status 124, and kestrel says so.
start=$(now_ms)
status=0; x --timeout 2 'sleep 100' 2>"$work/err" || status=$?
took=$(($(now_ms) - start))
expect_eq "status after --timeout" 124 "$status"
grep -qx 'kestrel: error: the command ran past --timeout 2 s and was killed' "$work/err" ||
  fail "no timeout message: $(cat "$work/err")"
[ "$took" -ge 1900 ] && [ "$took" -le 4000 ] || fail "--timeout 2 returned after $took ms"

# Standard input is forwarded (not a terminal), end of input included.
expect_eq "stdin" "a b end" "$(printf 'a\nb\n' | x 'cat; echo end' | tr '\n' ' ' | sed 's/ $//')"
head -c 3000000 /dev/urandom >"$work/blob"
expect_eq "1 MB+ of stdin" "$(sha256sum <"$work/blob")" "$(x sha256sum <"$work/blob")"

# -t: a pseudo-terminal (24x80 when stdin is not a terminal), input echoed,
# the shell's exit status returned.
out=$(x -t 'tty; stty size' </dev/null | tr -d '\r')
[[ $out == /dev/pts/*$'\n'"24 80" ]] || fail "-t gives no terminal: $out"
status=0
out=$(printf 'echo "on $(tty)"\nexit 5\n' | "$KESTREL" exec -t "$vm_name" -f "$vm_dir" -- /bin/sh | tr -d '\r') || status=$?
expect_eq "status of a shell on a pty" 5 "$status"
echo "$out" | grep -q 'on /dev/pts/' || fail "no output from the shell on the pty: $out"
# On a real terminal (script(1)) the window size comes from it.
out=$(script -qec "stty rows 33 cols 99; $KESTREL exec -t $vm_name 'stty size' -f $vm_dir" /dev/null </dev/null |
  tr -d '\r\0')
echo "$out" | grep -q '33 99$' || fail "the pty did not get the terminal's size: $out"

# SIGINT is forwarded to the command, whose own status comes back. (Job
# control, so that the background kestrel does not inherit SIGINT ignored.)
set -m
"$KESTREL" exec "$vm_name" 'trap "echo got INT; exit 9" INT; echo ready; while :; do sleep 0.1; done' \
  -f "$vm_dir" >"$work/sig.out" &
pid=$!
set +m
for i in $(seq 100); do grep -q ready "$work/sig.out" && break; sleep 0.1; done
kill -INT "$pid"
status=0; wait "$pid" || status=$?
expect_eq "status after a forwarded SIGINT" 9 "$status"
grep -q 'got INT' "$work/sig.out" || fail "the command did not see SIGINT: $(cat "$work/sig.out")"

"$KESTREL" destroy -f "$vm_dir"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

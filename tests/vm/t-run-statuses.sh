# What kestrel run returns when the program cannot run, the command line is
# wrong, or the run's own descriptors are odd: a shell's statuses (127, 126,
# 2), at once and without a VM; never a hang.
source "$(dirname "$0")/lib.sh"

# run_status EXPECTED WHAT ARGS...: kestrel run ARGS within 20 s.
run_status() {
  local expected=$1 what=$2 status
  shift 2
  set +e
  timeout -s KILL 20 "$KESTREL" run --keep never "$@" >"$work/out" 2>"$work/err" </dev/null
  status=$?
  set -e
  expect_eq "$what: exit status ($(cat "$work/err"))" "$expected" "$status"
}

run_status 127 "missing program" -- "$work/no-such-program"
grep -q 'No such file or directory' "$work/err" || fail "missing program: $(cat "$work/err")"
run_status 127 "program not in PATH" -- kestrel-no-such-command
run_status 126 "a directory as the program" -- "$work"
grep -q 'is a directory' "$work/err" || fail "directory: $(cat "$work/err")"
printf '#!/bin/sh\n' >"$work/noexec"
run_status 126 "a file without execute permission" -- "$work/noexec"
mkfifo "$work/fifo"
chmod +x "$work/fifo"
run_status 126 "a FIFO as the program" -- "$work/fifo"
grep -q 'not a regular file' "$work/err" || fail "FIFO: $(cat "$work/err")"
run_status 2 "an unknown option" --bogus /bin/true
grep -q 'unknown option --bogus' "$work/err" || fail "unknown option: $(cat "$work/err")"
[ -z "$(deployments)" ] || fail "a program that cannot run left deployments: $(deployments)"
[ -z "$(our_qemus)" ] || fail "a program that cannot run started QEMU"

# Closed standard descriptors: stdin closed reads as empty, never as one of
# kestrel's own descriptors (the signalfd became fd 0 and hung forever).
set +e
out=$(timeout -s KILL 60 "$KESTREL" run -q --keep never -- /bin/sh -c 'cat; echo rc=$?' <&- 2>"$work/err")
status=$?
set -e
expect_eq "closed stdin: status ($(cat "$work/err"))" 0 "$status"
expect_eq "closed stdin: output" "rc=0" "$out"
set +e
timeout -s KILL 60 "$KESTREL" run -q --keep never -- /bin/sh -c 'echo gone; exit 3' >&- 2>&-
status=$?
set -e
expect_eq "closed stdout and stderr: the program's status" 3 "$status"

# The deployment dir removed while the program runs: the program's status
# still comes back (not 125), with a warning.
mkdir "$work/sig"
set +e
"$KESTREL" run --share "$work/sig:rw" -- /bin/sh -c "touch $work/sig/started; sleep 3; exit 5" 2>"$work/err" &
run=$!
for _ in $(seq 300); do
  [ -e "$work/sig/started" ] && break
  sleep 0.1
done
dir=$(start_dir "$work/err")
[ -n "$dir" ] && [ -e "$work/sig/started" ] || fail "the program did not start: $(cat "$work/err")"
rm -rf "$dir"
wait "$run"
status=$?
set -e
expect_eq "status with the deployment dir removed ($(cat "$work/err"))" 5 "$status"
grep -q 'was removed during the run' "$work/err" || fail "no warning: $(cat "$work/err")"
[ -z "$(our_qemus)" ] || fail "QEMU left running after its dir was removed"
echo PASS

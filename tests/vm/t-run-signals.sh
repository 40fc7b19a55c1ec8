# SIGINT/SIGTERM to `kestrel run` are forwarded to the program; kestrel exits
# 130/143 within 5 s, says so, and leaves no QEMU and no deployment dir.
source "$(dirname "$0")/lib.sh"
set -m  # background runners get the default SIGINT disposition (job control)

# signal_run SIGNAL EXPECTED-STATUS PROGRAM...: waits until the program has
# printed "ready", signals the runner, checks status, time and leftovers.
signal_run() {
  local sig=$1 expected=$2 pid status=0 sent took
  shift 2
  rm -f "$work/out" "$work/err"
  "$KESTREL" run --mem 256 -- "$@" >"$work/out" 2>"$work/err" &
  pid=$!
  for i in $(seq 300); do grep -q ready "$work/out" && break; sleep 0.1; done
  grep -q ready "$work/out" || fail "the program never started: $(cat "$work/err")"
  sent=$(now_ms)
  kill "-$sig" "$pid"
  wait "$pid" || status=$?
  took=$(($(now_ms) - sent))
  echo "SIG$sig: status $status after $took ms"
  expect_eq "status after SIG$sig" "$expected" "$status"
  [ "$took" -le 5000 ] || fail "kestrel took $took ms to exit after SIG$sig"
  grep -q "^kestrel: interrupted by SIG$sig: stopping the program and tearing VM .* down$" "$work/err" ||
    fail "no message about SIG$sig: $(cat "$work/err")"
  [ -z "$(our_qemus)" ] || fail "QEMU still runs after SIG$sig: $(our_qemus)"
  [ -z "$(deployments)" ] || fail "deployment left after SIG$sig: $(deployments)"
}

signal_run INT 130 sh -c 'echo ready; sleep 100'
signal_run TERM 143 sh -c 'echo ready; sleep 100'
# The program sees the signal (and may clean up) before the VM goes.
signal_run TERM 143 sh -c 'trap "echo got TERM; exit 0" TERM; echo ready; sleep 100 & wait'
grep -qx "got TERM" "$work/out" || fail "the program did not get SIGTERM: $(cat "$work/out")"
# A program that ignores the signal is torn down after the grace period.
signal_run INT 130 sh -c 'trap "" INT; echo ready; sleep 100'
echo PASS

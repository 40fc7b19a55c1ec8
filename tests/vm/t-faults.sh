# A randomized fault suite: runs that meet a fault at a random moment (during
# boot or while the program runs) end with a clear message and the right
# status, and afterwards `kestrel gc` leaves no QEMU process and no
# deployment directory. Faults: SIGKILL the runner, SIGKILL QEMU, SIGINT the
# runner, a guest kernel panic, a hang past --timeout.
# KESTREL_FAULT_ITERATIONS (default 50) and KESTREL_FAULT_SEED replay a run.
# kestrel-test-timeout: 900
source "$(dirname "$0")/lib.sh"
# A cache of its own: the first runs also meet their faults while the
# warm-start template is being built and saved, not only in clones.
use_own_cache
set -m  # background runners get the default SIGINT disposition (job control)

iterations=${KESTREL_FAULT_ITERATIONS:-50}
seed=${KESTREL_FAULT_SEED:-$((RANDOM * 32768 + RANDOM))}
workers=2
faults=(kill-runner kill-qemu sigint-runner panic timeout)
echo "fault suite: $iterations iterations, seed $seed (KESTREL_FAULT_SEED=$seed replays it)"

# Milliseconds -> "S.mmm" for sleep.
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }
# Waits up to 20 s for a QEMU of this worker; prints its pid.
wait_qemu() {
  local i pid
  for i in $(seq 400); do
    pid=$(our_qemus | head -1)
    [ -n "$pid" ] && { echo "$pid"; return 0; }
    sleep 0.05
  done
  return 1
}
# expect_in FILE TEXT: the run's stderr says TEXT.
expect_in() { grep -qF -- "$2" "$1" || fail "expected '$2' in the run's messages: $(cat "$1")"; }

# One iteration: prints "FAULT DELAY_MS" and fails with a message on error.
iteration() {
  local fault=$1 delay=$2 log=$3 pid qemu status=0
  case $fault in
    kill-runner)
      "$KESTREL" run --mem 256 -- sleep 100 2>"$log" &
      pid=$!
      sleep "$(secs "$delay")"
      kill -KILL "$pid"
      wait "$pid" || status=$?
      expect_eq "status of a runner killed with SIGKILL" 137 "$status"
      # Its deployment (if it got that far) is an orphan, and gc says so.
      if [ -n "$(deployments)" ]; then
        "$KESTREL" gc >"$log.gc"
        grep -q "^destroyed $KESTREL_RUNTIME_DIR/.* (orphaned)$" "$log.gc" ||
          fail "gc did not report the orphan: $(cat "$log.gc")"
      fi
      ;;
    kill-qemu)
      "$KESTREL" run --mem 256 -- sleep 100 2>"$log" &
      pid=$!
      qemu=$(wait_qemu) || fail "no QEMU appeared: $(cat "$log")"
      sleep "$(secs "$delay")"
      kill -KILL "$qemu"
      wait "$pid" || status=$?
      expect_eq "status after QEMU was killed" 125 "$status"
      expect_in "$log" "QEMU was killed by signal 9 (SIGKILL)"
      expect_in "$log" "console log: $KESTREL_RUNTIME_DIR/"
      ;;
    sigint-runner)
      "$KESTREL" run --mem 256 -- sleep 100 2>"$log" &
      pid=$!
      sleep "$(secs "$delay")"
      local sent=$(date +%s%N)
      kill -INT "$pid"
      wait "$pid" || status=$?
      local took=$((($(date +%s%N) - sent) / 1000000))
      expect_eq "status after SIGINT" 130 "$status"
      [ "$took" -le 5000 ] || fail "the runner took $took ms to exit after SIGINT"
      # An interrupted run cleans up after itself, before any gc.
      [ -z "$(our_qemus)" ] || fail "QEMU still runs after SIGINT"
      [ -z "$(deployments)" ] || fail "deployment left after SIGINT: $(deployments)"
      # Interrupted before it printed anything (still starting up) is fine.
      [ ! -s "$log" ] || expect_in "$log" "interrupted by SIGINT"
      ;;
    panic)
      "$KESTREL" run --mem 256 -- sh -c "sleep $(secs "$delay"); echo c >/proc/sysrq-trigger; sleep 100" \
        2>"$log" || status=$?
      expect_eq "status after a guest panic" 125 "$status"
      expect_in "$log" "the guest kernel panicked (sysrq triggered crash)"
      expect_in "$log" "console log: $KESTREL_RUNTIME_DIR/"
      ;;
    timeout)
      "$KESTREL" run --mem 256 --keep never --timeout "$(secs $((delay + 1)))" -- sleep 100 2>"$log" || status=$?
      expect_eq "status after --timeout" 124 "$status"
      expect_in "$log" "sleep ran past --timeout"
      ;;
  esac
  "$KESTREL" gc >>"$log.gc"
  [ -z "$(our_qemus)" ] || fail "$fault: QEMU left after gc: $(our_qemus)"
  [ -z "$(deployments)" ] || fail "$fault: deployment left after gc: $(deployments)"
}

worker() {
  local w=$1 i fault delay
  export KESTREL_RUNTIME_DIR=$work/rt$w
  RANDOM=$((seed + w))
  for ((i = w; i < iterations; i += workers)); do
    fault=${faults[(i + RANDOM % 2) % ${#faults[@]}]}
    delay=$((RANDOM % 3000))
    echo "worker $w iteration $i: $fault after $delay ms"
    ( iteration "$fault" "$delay" "$work/run.$i.err" ) ||
      { echo "iteration $i ($fault, $delay ms) FAILED; its messages:"; cat "$work/run.$i.err"; return 1; }
  done
}

for w in $(seq 0 $((workers - 1))); do
  worker "$w" >"$work/worker.$w.log" 2>&1 &
done
failed=0
for job in $(jobs -p); do wait "$job" || failed=$((failed + 1)); done
cat "$work"/worker.*.log
[ "$failed" -eq 0 ] || fail "$failed worker(s) failed"
count() { grep -c ": $1 after" "$work"/worker.*.log | awk -F: '{ s += $2 } END { print s }'; }
for f in "${faults[@]}"; do
  n=$(count "$f")
  echo "$f: $n iterations"
  [ "$n" -ge $((iterations / 10)) ] || fail "fault $f ran only $n times"
done
echo PASS

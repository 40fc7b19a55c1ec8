# A runner killed with SIGKILL leaves an orphan that the next kestrel
# command removes on start; a kept VM past its time to live goes the same way.
source "$(dirname "$0")/lib.sh"
# Any command sweeps first: here a destroy with nothing to destroy (its own
# "no such deployment" error is not what this test is about).
sweep() { "$KESTREL" destroy -f "$work/nothing-here" 2>/dev/null || true; }

"$KESTREL" run --mem 256 -- sh -c 'echo ready; sleep 100' >"$work/out" 2>"$work/err" &
pid=$!
for i in $(seq 300); do grep -q ready "$work/out" && break; sleep 0.1; done
grep -q ready "$work/out" || fail "the program never started: $(cat "$work/err")"
kill -KILL "$pid"
wait "$pid" || true
"$KESTREL" ls | grep -q ' orphaned ' || fail "ls does not show the orphan: $("$KESTREL" ls)"
expect_eq "QEMU of the orphan" 1 "$(our_qemus | wc -l)"
sweep
[ -z "$(our_qemus)" ] || fail "the orphan's QEMU survived the next command"
[ -z "$(deployments)" ] || fail "the orphan's deployment survived the next command: $(deployments)"

# Kept past the time to live (KESTREL_KEEP_TTL): swept as well.
start_kept_vm --mem 256
KESTREL_KEEP_TTL=1h sweep
[ -e "$vm_dir" ] || fail "a kept VM within its time to live was swept"
sleep 1
KESTREL_KEEP_TTL=1s sweep
[ ! -e "$vm_dir" ] || fail "a kept VM past its time to live was not swept"
[ -z "$(our_qemus)" ] || fail "QEMU left: $(our_qemus)"
echo PASS

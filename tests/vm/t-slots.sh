# kestrel-test-timeout: 600
# The slot limiter: 64 runs started at once with 2 slots all succeed, and
# never more than 2 VMs are alive at a time (sampled every 20 ms while they run).
source "$(dirname "$0")/lib.sh"

export KESTREL_SLOTS=2
runs=64
sampler() {
  local max=0 n
  while [ ! -e "$work/done" ]; do
    n=$(our_qemus | wc -l)
    [ "$n" -gt "$max" ] && max=$n && echo "$max" >"$work/max"
    sleep 0.02
  done
}
echo 0 >"$work/max"
sampler &
sampler_pid=$!

seq "$runs" | xargs -P "$runs" -I{} sh -c \
  '"$0" run -q --mem 256 --keep never -- /bin/true 2>"$1/err.{}"; echo $? >"$1/status.{}"' "$KESTREL" "$work"
touch "$work/done"
wait "$sampler_pid"

ok=$(grep -lx 0 "$work"/status.* | wc -l)
[ "$ok" -eq "$runs" ] || fail "$((runs - ok)) of $runs runs failed: $(grep -L -x 0 "$work"/status.* | head -3 | sed 's/status/err/' | xargs cat)"
max=$(cat "$work/max")
echo "at most $max VMs alive at a time"
[ "$max" -le 2 ] || fail "$max VMs were alive at once with 2 slots"
[ "$max" -ge 1 ] || fail "the sampler never saw a VM: it cannot have measured anything"
waited=$(grep -l 'waiting for a free VM slot' "$work"/err.* | wc -l)
[ "$waited" -gt 0 ] || fail "no run said that it waited for a slot"
for f in "$work"/err.*; do
  n=$(grep -c 'waiting for a free VM slot' "$f" || true)
  [ "$n" -le 1 ] || fail "a run said $n times that it waits: $(cat "$f")"
done
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

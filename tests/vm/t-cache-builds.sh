# Template builds that stall or die (issue 9, items 10 and 16): a run waiting
# for a stopped builder says whom it waits for and boots cold within seconds;
# a killed builder's half-made template is listed as abandoned and removed
# by `cache clear`; a dead lean kernel build's tree by `gc`.
source "$(dirname "$0")/lib.sh"
use_own_cache

builds() { find "$KESTREL_CACHE_DIR/templates" -mindepth 1 -maxdepth 1 -type d -name '.build-*' 2>/dev/null; }

"$KESTREL" run --keep never -- /bin/true 2>"$work/builder.err" &
builder=$!
# A stopped builder must not outlive a failing test.
trap 'rc=$?; kill -KILL "$builder" 2>/dev/null || true; (exit $rc); finish' EXIT
for _ in $(seq 600); do
  [ -n "$(builds)" ] && break
  sleep 0.05
done
[ -n "$(builds)" ] || fail "no template build started: $(cat "$work/builder.err")"
kill -STOP "$builder"

# The waiter: one notice naming the builder, then a cold boot, in seconds.
start=$(now_ms)
"$KESTREL" run --keep never -- /bin/sh -c 'echo waited' >"$work/out" 2>"$work/err" ||
  fail "waiting run failed: $(cat "$work/err")"
took=$(($(now_ms) - start))
expect_eq "waiting run output" waited "$(cat "$work/out")"
expect_eq "waiting notices" 1 "$(grep -c "waiting for the warm-start template being built by pid $builder" "$work/err")"
grep -q "gave up waiting for the warm-start template after .* (pid $builder is stopped); booting cold" "$work/err" ||
  fail "no give-up notice: $(cat "$work/err")"
[ "$took" -lt 40000 ] || fail "the waiting run took $took ms"

"$KESTREL" cache ls | grep -q "building by pid $builder" || fail "cache ls: $("$KESTREL" cache ls)"
"$KESTREL" cache clear | grep -q "1 template(s) being built, kept" || fail "cache clear did not keep the build"
[ -n "$(builds)" ] || fail "cache clear removed a live builder's build"

# The builder dies: its build is abandoned, listed, and removed.
kill -KILL "$builder"
wait "$builder" 2>/dev/null || true
for _ in $(seq 100); do
  [ -z "$(our_qemus)" ] && break
  sleep 0.1
done
"$KESTREL" cache ls | grep -q "abandoned" || fail "cache ls: $("$KESTREL" cache ls)"
"$KESTREL" cache ls --json | grep -q '"state": "abandoned"' || fail "cache ls --json: $("$KESTREL" cache ls --json)"
"$KESTREL" cache clear | grep -q "removed 1 abandoned template build" || fail "cache clear did not say it"
expect_eq "builds after cache clear" "" "$(builds)"
"$KESTREL" gc >/dev/null 2>&1 || true  # the killed run's deployment (our own runtime dir)
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"

# A lean kernel build that died leaves its tree (and lock): gc removes them
# (docs/kernels.md). In a kernels dir of this test's own, not the shared one.
rm "$KESTREL_CACHE_DIR/kernels"
dead=$KESTREL_CACHE_DIR/kernels/.build-lean-0123456789abcdef-dead
mkdir -p "$dead/linux-source-6.1"
: >"$KESTREL_CACHE_DIR/kernels/.lean-0123456789abcdef.lock"
"$KESTREL" gc >"$work/gc.out" 2>&1 || fail "gc failed: $(cat "$work/gc.out")"
grep -qx "removed 1 abandoned kernel build(s)" "$work/gc.out" || fail "gc did not say it: $(cat "$work/gc.out")"
[ ! -e "$dead" ] || fail "gc left the dead build's tree"
[ ! -e "$KESTREL_CACHE_DIR/kernels/.lean-0123456789abcdef.lock" ] || fail "gc left the dead build's lock"
echo PASS

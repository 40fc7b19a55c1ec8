# Templates are built once per configuration, even when many runs ask at
# once, and a damaged template is detected and rebuilt.
source "$(dirname "$0")/lib.sh"
use_own_cache

templates() { find "$KESTREL_CACHE_DIR/templates" -mindepth 1 -maxdepth 1 -type d ! -name '.*' 2>/dev/null; }

# Four first runs at once: one builds, the others wait for it and restore.
runs_at_once 4 /bin/sh -c 'echo ok'
expect_eq "failed first runs" 0 "$failed"
expect_eq "outputs" "ok ok ok ok" "$(cat "$work"/out.* | xargs)"
expect_eq "templates built" 1 "$(templates | wc -l)"
expect_eq "builders" 1 "$(cat "$work"/err.* | grep -c 'saving a warm-start template')"
tdir=$(templates)

check_rebuilt() {
  local what=$1
  "$KESTREL" run --keep always -- /bin/sh -c 'echo after' >"$work/out" 2>"$work/err" ||
    fail "run after $what failed: $(cat "$work/err")"
  expect_eq "output after $what" after "$(cat "$work/out")"
  grep -q 'saving a warm-start template' "$work/err" || fail "no rebuild after $what: $(cat "$work/err")"
  dir=$(start_dir "$work/err")
  expect_eq "start after $what" warm "$(vm_start "$dir")"
  "$KESTREL" destroy -f "$dir"
  [ -s "$tdir/memory" ] && [ -s "$tdir/state" ] || fail "template not rebuilt after $what"
}

truncate -s 4096 "$tdir/memory"
check_rebuilt "truncating the memory file"
rm "$tdir/state"
check_rebuilt "deleting the state file"
printf 'garbage' | dd of="$tdir/state" bs=1 seek=100 conv=notrunc status=none
check_rebuilt "corrupting the state file"

"$KESTREL" cache ls | grep -q '^templates (1)' || fail "cache ls: $("$KESTREL" cache ls)"
"$KESTREL" cache clear >/dev/null
expect_eq "templates after cache clear" 0 "$(templates | wc -l)"

# Two "nodes" sharing this cache (kernel, initramfs) with templates of their
# own (KESTREL_TEMPLATE_DIR, docs/scale-out.md): each builds its template in
# its own directory, none in the shared one, and the kernel is the shared one.
kernel_files() { stat -L -c '%n %s %Y %i' "$KESTREL_CACHE_DIR"/kernels/*/vmlinux; }
kernels_before=$(kernel_files)
for node in a b; do
  KESTREL_TEMPLATE_DIR=$work/node-$node "$KESTREL" run -q --keep never -- /bin/sh -c "echo $node" >"$work/out" ||
    fail "a run with templates in node-$node failed"
  expect_eq "output on node $node" "$node" "$(cat "$work/out")"
  expect_eq "templates of node $node" 1 "$(find "$work/node-$node" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l)"
  out=$(KESTREL_TEMPLATE_DIR=$work/node-$node "$KESTREL" doctor 2>&1 || true)
  grep -q "1 template(s) in $work/node-$node (KESTREL_TEMPLATE_DIR)" <<<"$out" || fail "doctor on node $node: $out"
done
expect_eq "templates in the shared cache" 0 "$(templates | wc -l)"
expect_eq "the shared kernels" "$kernels_before" "$(kernel_files)"
status=0
KESTREL_TEMPLATE_DIR=relative/dir "$KESTREL" run -q --keep never -- /bin/true 2>"$work/bad" || status=$?
[ "$status" -ne 0 ] || fail "a relative KESTREL_TEMPLATE_DIR was taken"
grep -q "KESTREL_TEMPLATE_DIR=relative/dir: expected an absolute path" "$work/bad" || fail "odd message: $(cat "$work/bad")"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

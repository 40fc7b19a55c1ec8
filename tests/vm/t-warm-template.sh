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
echo PASS

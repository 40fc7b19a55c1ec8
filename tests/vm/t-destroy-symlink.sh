# destroy through symlinks (issue 9, items 2, 3, 12): a path through a
# symlinked parent and a link to a deployment both kill the QEMU and remove
# the deployment itself, and `ls` stays consistent; a directory that is not
# one of kestrel's is refused with nothing deleted; a gone one is an error.
source "$(dirname "$0")/lib.sh"
# destroyed_through WHAT PATH: `destroy -f PATH` destroyed the kept VM
# ($vm_dir) itself: its line printed, its QEMU killed, its directory gone.
destroyed_through() {
  local out
  out=$("$KESTREL" destroy -f "$2")
  expect_eq "$1" "destroyed $vm_dir (kept)" "$out"
  [ -z "$(our_qemus)" ] || fail "QEMU left running after $1: $(our_qemus)"
  [ ! -e "$vm_dir" ] || fail "$1 left $vm_dir"
}

start_kept_vm --mem 256
ln -s "$KESTREL_RUNTIME_DIR" "$work/alias"
destroyed_through "destroy through a symlinked parent" "$work/alias/$vm_name"
expect_eq "ls --json after destroy" "[]" "$("$KESTREL" ls --json)"

start_kept_vm --mem 256
ln -s "$vm_dir" "$work/link"
destroyed_through "destroy of a link" "$work/link"
[ -L "$work/link" ] || fail "destroy -f LINK removed the link itself"

# A gone deployment: the same error and status for -f DIR and NAME.
set +e
err=$("$KESTREL" destroy -f "$vm_dir" 2>&1); rc=$?
set -e
expect_eq "destroy -f of a gone dir: status" 1 "$rc"
[[ $err == *"no such deployment"* ]] || fail "destroy -f of a gone dir says: $err"
set +e
err=$("$KESTREL" destroy "$vm_name" 2>&1); rc=$?
set -e
expect_eq "destroy of a gone VM: status" 1 "$rc"
[[ $err == *"no such deployment"* ]] || fail "destroy of a gone VM says: $err"

# The issue's victim, outside and inside the runtime dir: refused, intact.
for victim in "$work/victim" "$KESTREL_RUNTIME_DIR/victim"; do
  mkdir -p "$victim/src"
  echo '{"version": 1}' >"$victim/deployment.json"
  set +e
  err=$("$KESTREL" destroy -f "$victim" 2>&1); rc=$?
  set -e
  expect_eq "destroy -f $victim: status" 1 "$rc"
  [[ $err == *"not one of kestrel's deployments"* ]] || fail "destroy -f $victim says: $err"
  [ -d "$victim/src" ] && [ -f "$victim/deployment.json" ] || fail "destroy -f deleted from $victim"
done
"$KESTREL" gc >/dev/null
[ -d "$KESTREL_RUNTIME_DIR/victim/src" ] || fail "gc deleted a directory kestrel did not make"
rm -rf "$KESTREL_RUNTIME_DIR/victim"
echo PASS

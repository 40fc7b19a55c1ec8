# Everything works for a user without root or sudo once setup is done.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "run as root to test an unprivileged user (it switches to nobody)"
command -v setpriv >/dev/null || skip "no setpriv"
chmod 755 "$work"
# nobody gets its own cache holding a copy of our kernel, and its own dirs.
cache=$(guest_kernel_dir)  # the tests' kernel, selected there as here (kernel_env)
mkdir -p "$work/home/.cache/kestrel/kernels"
cp -a "$cache" "$work/home/.cache/kestrel/kernels/"
cp "$KESTREL_BUILD_DIR/tests/kestrel_unit_tests" "$work/home/unit_tests" 2>/dev/null || true
chown -R nobody:nogroup "$work/home"
as_nobody() {
  setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env \
    env HOME="$work/home" PATH=/usr/bin:/bin KESTREL_RUNTIME_DIR="$work/home/rt" $(kernel_env) "$@"
}
out=$(as_nobody "$KESTREL" run -q --keep never -- /bin/sh -c 'echo "$(hostname) $(id -u)"; exit 5') && status=0 || status=$?
expect_eq "exit status as nobody" 5 "$status"
[[ $out == *" 0" ]] || fail "unexpected output: $out"
if [ -x "$work/home/unit_tests" ]; then
  as_nobody "$KESTREL" run -q -- "$work/home/unit_tests" --gtest_filter='Frame.*' >/dev/null ||
    fail "gtest binary failed as nobody"
fi
# Its project's files land on the host as its own; a device node cannot be
# made there (QEMU runs as nobody) and the run still passes.
mkdir -p "$work/home/proj/.git"
chown -R nobody:nogroup "$work/home/proj"
(cd "$work/home/proj" && as_nobody "$KESTREL" run -q --keep never -- /bin/sh -c \
  'echo hi >out.txt; mknod dev c 1 3 2>/dev/null && echo mknod-worked; true') >"$work/out" 2>"$work/err" ||
  fail "project run as nobody failed: $(cat "$work/err")"
expect_eq "out.txt written as nobody" hi "$(cat "$work/home/proj/out.txt")"
expect_eq "owner of out.txt" "nobody" "$(stat -c %U "$work/home/proj/out.txt")"
# A failing run's file is there too (its VM is not kept here).
(cd "$work/home/proj" && as_nobody "$KESTREL" run -q --keep never -- /bin/sh -c 'echo bye >failed.txt; exit 4') \
  2>"$work/err" && fail "the failing run passed" || status=$?
expect_eq "failing run's status as nobody" 4 "$status"
expect_eq "owner of failed.txt" "nobody bye" "$(stat -c %U "$work/home/proj/failed.txt") $(cat "$work/home/proj/failed.txt")"
[ ! -e "$work/home/proj/dev" ] && [ ! -s "$work/out" ] || fail "a device node was made: $(cat "$work/out")"
[ -z "$(pgrep -u nobody -f qemu-system || true)" ] || fail "nobody's QEMU left running"
echo PASS

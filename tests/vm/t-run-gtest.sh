# A dynamically linked test binary from this project's build runs and passes.
source "$(dirname "$0")/lib.sh"

bin=$KESTREL_BUILD_DIR/tests/kestrel_unit_tests
[ -x "$bin" ] || skip "no unit test binary"
grep -q 'libstdc++' <(ldd "$bin") || fail "expected a dynamically linked test binary"
"$KESTREL" run -q -- "$bin" --gtest_filter='Frame.*:Messages.*' >"$work/out" 2>&1 || {
  cat "$work/out"
  fail "gtest binary failed in the VM"
}
grep -q '\[  PASSED  \]' "$work/out" || fail "no PASSED line: $(tail -5 "$work/out")"
echo PASS

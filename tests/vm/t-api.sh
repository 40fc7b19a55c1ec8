# kestrel-test-timeout: 900
# The C++ API's own tests (tests/api/api_test.cpp), built against this tree's
# libkestrel.so: run() as `kestrel run` (programs that cannot run come back
# as 127/126, an image run starts in the project directory and writes
# through), argument errors thrown, four Topology::exec calls from four
# threads at once, a server and its client in two threads, a moved-from
# Topology that says so. Nothing is left running.
source "$(dirname "$0")/lib.sh"

cmake --build "$KESTREL_BUILD_DIR" --target kestrel_api_tests >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "cannot build kestrel_api_tests"; }
cd "$work"
KESTREL_TEST_RECIPE=$KESTREL_SOURCE_DIR/examples/postgres/images/pg.toml \
  "$KESTREL_BUILD_DIR/tests/kestrel_api_tests" >"$work/out" 2>&1 || { cat "$work/out"; fail "the API's tests failed"; }
grep -q '^\[  PASSED  \] 5 tests\.$' "$work/out" || fail "not 5 tests passing: $(tail -20 "$work/out")"
grep -q 'SKIPPED' "$work/out" && fail "a test was skipped: $(grep -A2 SKIPPED "$work/out")"
[ -z "$(deployments)" ] || fail "the tests left deployments: $(deployments)"
[ -z "$(our_qemus)" ] || fail "the tests left QEMU running: $(our_qemus)"
echo PASS

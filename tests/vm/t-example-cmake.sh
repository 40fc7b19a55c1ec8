# examples/cmake-gtest configured with the documented flag
# -DCMAKE_CROSSCOMPILING_EMULATOR="kestrel;run;--": CMake (not cross-compiling)
# prefixes add_test() and gtest_discover_tests() commands with it, the
# discovery's --gtest_list_tests runs on the host, and ctest runs each test
# in its own VM. Each test writes its GoogleTest XML report into the build
# tree (write-through), so the reports are on the host after ctest.
source "$(dirname "$0")/lib.sh"

cmake -S "$KESTREL_SOURCE_DIR/examples/cmake-gtest" -B "$work/build" -G Ninja \
  -DCMAKE_CROSSCOMPILING_EMULATOR="kestrel;run;--" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "configure failed"; }
# The build lists the tests (POST_BUILD discovery): on the host, so a QEMU
# that cannot start does not matter.
KESTREL_QEMU=/bin/false cmake --build "$work/build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "build (with test discovery) failed"; }
[ -z "$(deployments)" ] || fail "test discovery created deployments"

cd "$work/build"
ctest -N -V >"$work/commands" 2>&1
expected=3  # Calc.Adds, Vm.RunsInAKestrelVm, all_in_one_vm
expect_eq "tests" "$expected" "$(grep -c 'Test command: .*/kestrel "run" "--"' "$work/commands" || true)"

[ ! -e reports ] || fail "reports exist before any test ran: $(ls reports)"
ctest -V >"$work/out" 2>&1 || { cat "$work/out"; fail "ctest failed"; }
expect_eq "VMs booted (one per test)" "$expected" "$(grep -c ': kestrel: VM ' "$work/out" || true)"
grep -q "in VM .* on kernel $(guest_kernel)\$" "$work/out" || fail "no guest kernel reported: $(cat "$work/out")"
grep -q "100% tests passed" "$work/out" || fail "not all tests passed"

# The XML reports, one per test, reached the host; each names its test cases.
# check_report FILE TESTCASE...: FILE holds these passing test cases and no failure.
check_report() {
  local file=reports/$1 testcase
  shift
  [ -s "$file" ] || fail "no report $file on the host: $(ls -la reports 2>&1)"
  grep -q '<testsuites .*failures="0"' "$file" || fail "$file records failures: $(cat "$file")"
  for testcase in "$@"; do
    grep -q "<testcase name=\"$testcase\" .*status=\"run\"" "$file" ||
      fail "$file lacks test case $testcase: $(cat "$file")"
  done
}
expect_eq "reports" "$expected" "$(find reports -name '*.xml' | wc -l)"
check_report Calc.Adds.xml Adds
check_report Vm.RunsInAKestrelVm.xml RunsInAKestrelVm
check_report all_in_one_vm.xml Adds RunsInAKestrelVm
echo PASS

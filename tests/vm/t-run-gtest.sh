# A dynamically linked GoogleTest binary runs in a VM and passes, its filter
# and its output as on the host: the test builds one of its own.
source "$(dirname "$0")/lib.sh"

cat >"$work/t.cpp" <<'CPP'
#include <gtest/gtest.h>
#include <unistd.h>
#include <fstream>
#include <string>
TEST(InVm, HostnameIsTheVmName) {
  char name[256] = {};
  ASSERT_EQ(gethostname(name, sizeof name - 1), 0);
  ASSERT_NE(getenv("KESTREL_VM"), nullptr);
  EXPECT_EQ(std::string(name), getenv("KESTREL_VM"));
}
TEST(InVm, WritesLandInTheWorkTree) {
  std::ofstream(std::string(getenv("WORK")) + "/from-gtest.txt") << "written in the VM\n";
}
TEST(NotRun, Fails) { FAIL() << "the filter should have left this out"; }
CPP
g++ -std=c++17 -O0 "$work/t.cpp" -o "$work/gtest_bin" -lgtest -lgtest_main -pthread 2>"$work/cc.log" ||
  fail "cannot build a GoogleTest binary: $(cat "$work/cc.log")"
grep -q 'libstdc++' <(ldd "$work/gtest_bin") || fail "expected a dynamically linked test binary"
mkdir -p "$work/.git"  # $work is the project: its writes land on the host
cd "$work"
WORK=$work "$KESTREL" run -q -- "$work/gtest_bin" --gtest_filter='InVm.*' >"$work/out" 2>&1 || {
  cat "$work/out"
  fail "gtest binary failed in the VM"
}
grep -q '\[  PASSED  \] 2 tests' "$work/out" || fail "not the 2 tests passing: $(tail -5 "$work/out")"
expect_eq "what the test wrote" "written in the VM" "$(cat "$work/from-gtest.txt")"
# A failing test: its status and its report.
WORK=$work "$KESTREL" run -q --keep never -- "$work/gtest_bin" --gtest_filter='NotRun.*' >"$work/out" 2>&1 &&
  fail "a failing gtest passed"
grep -q 'the filter should have left this out' "$work/out" || fail "no failure message: $(cat "$work/out")"
echo PASS

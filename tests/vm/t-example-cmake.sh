# examples/cmake-gtest configured with the documented flag
# -DCMAKE_CROSSCOMPILING_EMULATOR="kestrel;run;--": CMake (not cross-compiling)
# prefixes add_test() and gtest_discover_tests() commands with it, the
# discovery's --gtest_list_tests runs on the host, and ctest runs each test
# in its own VM.
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

ctest -V >"$work/out" 2>&1 || { cat "$work/out"; fail "ctest failed"; }
expect_eq "VMs booted (one per test)" "$expected" "$(grep -c ': kestrel: VM ' "$work/out" || true)"
grep -q "in VM .* on kernel $(guest_kernel)\$" "$work/out" || fail "no guest kernel reported: $(cat "$work/out")"
grep -q "100% tests passed" "$work/out" || fail "not all tests passed"
echo PASS

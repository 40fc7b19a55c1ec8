# examples/postgres: a GoogleTest binary built on the host talks to the
# PostgreSQL server of its VM. CTest runs each test in a VM of the image
# that kestrel.toml names (built on first use), and `kestrel run --image`
# runs the binary from outside the project.
# kestrel-test-timeout: 900
source "$(dirname "$0")/lib.sh"

pkg-config --exists libpq || skip "no libpq-dev"
proj=$(copy_example postgres)
cmake -S "$proj" -B "$proj/build" -G Ninja -DCMAKE_CROSSCOMPILING_EMULATOR="kestrel;run;--" >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "configure failed"; }
KESTREL_QEMU=/bin/false cmake --build "$proj/build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "build failed"; }

# On the host there is no server: the test fails, so a pass below is the VM's.
"$proj/build/pg_test" --gtest_filter=Postgres.AnswersAQuery >/dev/null 2>&1 && skip "a PostgreSQL server answers on this host"

had_image=$("$KESTREL" image ls --json | python3 -c 'import json,sys; print(any(i["name"] == "pg" and i["current"] for i in json.load(sys.stdin)))')
(cd "$proj/build" && ctest --output-on-failure -V) >"$work/ctest" 2>&1 || { cat "$work/ctest"; fail "ctest failed"; }
# The first test built the image (unless it was built already), showing its stages.
if [ "$had_image" = False ]; then
  for stage in resolve download unpack image provision services; do
    grep -q "kestrel: image pg: $stage done in" "$work/ctest" || fail "no '$stage' stage shown: $(cat "$work/ctest")"
  done
fi
grep -q "100% tests passed, 0 tests failed out of 2" "$work/ctest" || fail "not both tests passed: $(cat "$work/ctest")"
expect_eq "VMs booted (one per test)" 2 "$(grep -c ': kestrel: VM ' "$work/ctest" || true)"

# From elsewhere, naming the recipe: the same image (a cache hit), warm.
cd "$work"
"$KESTREL" run --image "$proj/images/pg.toml" -- "$proj/build/pg_test" >"$work/run" 2>&1 ||
  fail "run --image failed: $(cat "$work/run")"
grep -q "PASSED.*2 tests" "$work/run" || fail "odd output: $(cat "$work/run")"
grep -q "image pg: resolve" "$work/run" && fail "the image was built again: $(cat "$work/run")"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

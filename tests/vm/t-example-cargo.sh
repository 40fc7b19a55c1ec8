# examples/rust with cargo: `kestrel cargo test` and the plain runner variable
# run each test binary in its own VM (the tests check that they run in a
# kestrel VM); listing runs on the host; a failing test fails cargo and keeps
# its VM. Under cargo-nextest, if installed, each test gets its own VM.
# Coverage: instrumented test binaries write their .profraw files into the
# project (write-through), so they are on the host after the run.
source "$(dirname "$0")/lib.sh"

command -v cargo >/dev/null || skip "cargo is not installed (sudo apt-get install cargo)"
crate=$(copy_example rust)
cd "$crate"
export CARGO_TARGET_DIR=$work/target CARGO_NET_OFFLINE=true
kernel=$(guest_kernel)

# check_vm_runs OUTPUT N: N test binaries ran, each in its own VM on the guest kernel.
check_vm_runs() {
  local vms
  vms=$(grep -c '^kestrel: VM ' "$1" || true)
  expect_eq "VMs booted" "$2" "$vms"
  grep -q "unit test: in VM .* on kernel $kernel\$" "$1" || fail "unit tests did not report the guest kernel: $(cat "$1")"
  grep -q "integration test: in VM .* on kernel $kernel\$" "$1" || fail "integration test did not run in a VM"
  [ -z "$(deployments)" ] || fail "passing runs left deployments: $(deployments)"
}

# The wrapper.
kestrel cargo test -- --nocapture >"$work/out" 2>&1 || { cat "$work/out"; fail "kestrel cargo test failed"; }
check_vm_runs "$work/out" 2

# No wrapper: the runner variable for the host triple.
triple=$(rustc -vV | sed -n 's/^host: //p')
var=CARGO_TARGET_$(echo "$triple" | tr 'a-z.-' 'A-Z__')_RUNNER
env "$var=kestrel run --" cargo test -- --nocapture >"$work/out" 2>&1 || { cat "$work/out"; fail "cargo test with $var failed"; }
check_vm_runs "$work/out" 2

# Listing runs on the host: with a QEMU that cannot start, it still works.
KESTREL_QEMU=/bin/false kestrel cargo test -- --list >"$work/out" 2>&1 || { cat "$work/out"; fail "listing needed a VM"; }
grep -q '^tests::adds: test' "$work/out" || fail "no test listed: $(cat "$work/out")"
# ... and with list_on_host = false it needs one (so the check above proves something).
cp kestrel.toml "$work/kestrel.toml.orig"
printf 'list_on_host = false\n' >>kestrel.toml
set +e
KESTREL_QEMU=/bin/false kestrel cargo test --lib -- --list >"$work/out" 2>&1
status=$?
set -e
[ "$status" -ne 0 ] || fail "listing in a VM with a broken QEMU passed"
grep -q 'failed to start' "$work/out" || fail "listing in a VM failed for another reason: $(cat "$work/out")"
cp "$work/kestrel.toml.orig" kestrel.toml
[ -z "$(deployments)" ] || fail "the failed boot left deployments: $(deployments)"

# A failing test fails cargo and keeps its VM with the usual message.
set +e
EXAMPLE_SHOULD_FAIL=1 kestrel cargo test --lib >"$work/out" 2>&1
status=$?
set -e
[ "$status" -ne 0 ] || fail "cargo passed although a test failed"
line=$(grep '^kestrel: test failed (exit status 101); VM ' "$work/out") || fail "no failure line: $(cat "$work/out")"
[[ $line =~ VM\ ([a-z0-9-]+)\ remains\ running,\ deployment\ dir\ (.+)$ ]] || fail "odd failure line: $line"
name=${BASH_REMATCH[1]}
dir=${BASH_REMATCH[2]}
grep -q "destroy -f" "$work/out" || fail "no destroy command printed"
out=$(kestrel exec "$name" 'echo $(hostname)' -f "$dir")
expect_eq "the kept VM answers" "$name" "$out"
kestrel destroy -f "$dir"

# cargo-nextest is not packaged in Debian; when it is installed, every test
# runs in its own VM (listing on the host).
if cargo nextest --version >/dev/null 2>&1; then
  kestrel cargo nextest run --no-fail-fast >"$work/out" 2>&1 || { cat "$work/out"; fail "kestrel cargo nextest run failed"; }
  tests=$(cargo test -q -- --list 2>/dev/null | grep -c ': test$')
  expect_eq "VMs under nextest (one per test)" "$tests" "$(grep -c '^kestrel: VM ' "$work/out" || true)"
else
  echo "note: cargo-nextest is not installed; its calls are replayed below instead" >&2
fi

# What nextest does with the runner variable, replayed by hand: per test
# binary `RUNNER BIN --list --format terse` (on the host here), then per test
# `RUNNER BIN --exact NAME --nocapture`, each in a VM of its own.
runner=(kestrel run --)
bins=$(cargo test --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]: print(m["executable"])')
[ -n "$bins" ] || fail "cargo test --no-run named no test binaries"
ran=0
for bin in $bins; do
  KESTREL_QEMU=/bin/false "${runner[@]}" "$bin" --list --format terse >"$work/list" 2>"$work/err" ||
    fail "nextest-style listing of $bin needed a VM: $(cat "$work/err")"
  while read -r name; do
    "${runner[@]}" "$bin" --exact "$name" --nocapture </dev/null >"$work/one" 2>&1 || { cat "$work/one"; fail "test $name failed"; }
    expect_eq "VMs for test $name" 1 "$(grep -c '^kestrel: VM ' "$work/one" || true)"
    grep -q "1 passed" "$work/one" || fail "test $name did not run: $(cat "$work/one")"
    ran=$((ran + 1))
  done < <(sed -n 's/: test$//p' "$work/list")
done
expect_eq "tests run one VM each" "$(cargo test -q -- --list 2>/dev/null | grep -c ': test$')" "$ran"
[ -z "$(deployments)" ] || fail "passing runs left deployments: $(deployments)"

# Coverage (last: the instrumented build replaces the plain one in
# $CARGO_TARGET_DIR). Each test binary writes LLVM_PROFILE_FILE when it exits,
# in its VM; the file lands in the project on the host. %m (the binary's
# signature) keeps the two binaries apart: %p alone would not, PIDs repeat
# from VM to VM.
profiles=$crate/target/profiles
set +e
RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C instrument-coverage" LLVM_PROFILE_FILE="$profiles/%p-%m.profraw" \
  kestrel cargo test >"$work/out" 2>&1
status=$?
set -e
if [ "$status" -ne 0 ] && grep -q 'profiler_builtins' "$work/out"; then
  echo "note: this rustc has no profiler runtime (profiler_builtins): coverage not checked" >&2
else
  [ "$status" -eq 0 ] || { cat "$work/out"; fail "kestrel cargo test with -C instrument-coverage failed"; }
  expect_eq "VMs booted (instrumented)" 2 "$(grep -c '^kestrel: VM ' "$work/out" || true)"
  mapfile -t raws < <(find "$profiles" -name '*.profraw' 2>/dev/null)
  expect_eq ".profraw files on the host (one per test binary)" 2 "${#raws[@]}"
  for raw in "${raws[@]}"; do
    [ -s "$raw" ] || fail "$raw is empty"
    # A 64-bit raw profile starts with the magic 0xff6c70726f667281 (little-endian).
    expect_eq "magic of $raw" "81 72 66 6f 72 70 6c ff" "$(od -An -N8 -tx1 "$raw" | xargs)"
  done
  # llvm-profdata reads only the raw format of its own LLVM version: rustc's
  # (rustup component add llvm-tools), or a system one of the same version.
  llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
  profdata=
  for tool in "$(rustc --print sysroot)/lib/rustlib/$triple/bin/llvm-profdata" "llvm-profdata-$llvm" \
    "/usr/lib/llvm-$llvm/bin/llvm-profdata" llvm-profdata; do
    if "$tool" --version 2>/dev/null | grep -q "LLVM version $llvm\."; then
      profdata=$tool
      break
    fi
  done
  if [ -n "$profdata" ]; then
    "$profdata" merge -o "$work/merged.profdata" "${raws[@]}" 2>"$work/err" || fail "$profdata merge refused the profiles: $(cat "$work/err")"
    "$profdata" show --all-functions "$work/merged.profdata" >"$work/show" || fail "$profdata show failed"
    # add() ran (mangled, v0 or legacy, its name holds "15kestrel_example3add").
    grep -A4 'kestrel_example3add' "$work/show" | grep -q 'Function count: [1-9]' ||
      fail "the profile does not count add(): $(cat "$work/show")"
  else
    echo "note: no llvm-profdata for LLVM $llvm (rustup component add llvm-tools): profiles not merged" >&2
  fi
fi
[ -z "$(deployments)" ] || fail "passing runs left deployments: $(deployments)"
echo PASS

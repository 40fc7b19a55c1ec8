# examples/rust with cargo: `kestrel cargo test` and the plain runner variable
# run each test binary in its own VM (the tests check that they run in a
# kestrel VM); listing runs on the host; a failing test fails cargo and keeps
# its VM. Under cargo-nextest, if installed, each test gets its own VM.
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
echo PASS

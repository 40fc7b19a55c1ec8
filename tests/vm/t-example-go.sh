# examples/go: `kestrel go test ./...` runs the package's tests in a VM (they
# check that they do); `go test -list` runs on the host.
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || skip "go is not installed (sudo apt-get install golang-go)"
pkg=$(copy_example go)
cd "$pkg"
# No downloads, and no newer toolchain fetched on the go.mod's behalf.
export GOPROXY=off GOTOOLCHAIN=local
kernel=$(guest_kernel)

kestrel go test -count=1 -v ./... >"$work/out" 2>&1 || { cat "$work/out"; fail "kestrel go test failed"; }
grep -q -- '--- PASS: TestRunsInAKestrelVM' "$work/out" || fail "the VM test did not pass: $(cat "$work/out")"
grep -q "in VM .* on kernel $kernel\$" "$work/out" || fail "no guest kernel reported: $(cat "$work/out")"
expect_eq "VMs booted" 1 "$(grep -c '^kestrel: VM ' "$work/out" || true)"

# Listing on the host: works with a QEMU that cannot start.
KESTREL_QEMU=/bin/false kestrel go test -count=1 -list . ./... >"$work/out" 2>&1 ||
  { cat "$work/out"; fail "go test -list needed a VM"; }
grep -qx TestRunsInAKestrelVM "$work/out" || fail "no test listed: $(cat "$work/out")"
echo PASS

# examples/go: `kestrel go test ./...` runs the package's tests in a VM (they
# check that they do); `go test -list` runs on the host. What the tests write
# reaches the host: coverage profiles (through go's work directory, a
# write-through build tree) and an artifact in the package (the project).
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

# Coverage: the test binary writes its profile into go's work directory
# (/tmp/go-buildN/bNNN/), where `go test` merges it into -coverprofile's file.
# profile_lines FILE: its lines, sorted (the "mode:" line and one per block).
profile_lines() { sort "$1"; }
# The host run is the reference. It fails (TestRunsInAKestrelVM wants a VM),
# but writes its profile all the same.
go test -count=1 -coverprofile=host.out ./... >"$work/out" 2>&1 && fail "the VM test passed on the host: $(cat "$work/out")"
grep -q -- '--- FAIL: TestRunsInAKestrelVM' "$work/out" || fail "the host run failed for another reason: $(cat "$work/out")"
[ "$(wc -l <host.out)" -gt 1 ] || fail "the host run's profile has no blocks: $(cat host.out)"
expected=$(profile_lines host.out)

go test -count=1 -exec "kestrel run --" -coverprofile=c.out ./... >"$work/out" 2>&1 ||
  { cat "$work/out"; fail "go test -exec kestrel -coverprofile failed"; }
expect_eq "profile under go test -exec kestrel" "$expected" "$(profile_lines c.out)"

kestrel go test -count=1 -cover ./... >"$work/out" 2>&1 || { cat "$work/out"; fail "kestrel go test -cover failed"; }
grep -q '^ok .*coverage: 100.0% of statements' "$work/out" || fail "no coverage percentage: $(cat "$work/out")"
kestrel go test -count=1 -coverprofile=k.out ./... >"$work/out" 2>&1 ||
  { cat "$work/out"; fail "kestrel go test -coverprofile failed"; }
expect_eq "profile under kestrel go test" "$expected" "$(profile_lines k.out)"

# ... which takes write-through: without it the guest's profile vanishes with
# the VM and go is left with the bare "mode:" line (so the checks above prove
# something).
KESTREL_WRITE_THROUGH=none kestrel go test -count=1 -coverprofile=none.out ./... >"$work/out" 2>&1 ||
  { cat "$work/out"; fail "kestrel go test -coverprofile without write-through failed"; }
expect_eq "profile without write-through" "mode: set" "$(cat none.out)"

# An artifact a test writes in its working directory (the package, in the
# project) is on the host after the run; no VM is left behind.
rm -f artifact.txt
EXAMPLE_WRITE_ARTIFACT=artifact.txt kestrel go test -count=1 -v -run TestWritesArtifact ./... >"$work/out" 2>&1 ||
  { cat "$work/out"; fail "the artifact test failed"; }
grep -q -- '--- PASS: TestWritesArtifact' "$work/out" || fail "the artifact test did not run: $(cat "$work/out")"
[ -f artifact.txt ] || fail "artifact.txt did not reach the host: $(ls -la)"
vm=$(start_name "$work/out")
[ -n "$vm" ] || fail "no VM started: $(cat "$work/out")"
expect_eq "artifact.txt" "written in VM $vm" "$(cat artifact.txt)"
[ -z "$(deployments)" ] || fail "passing runs left deployments: $(deployments)"

# Listing on the host: works with a QEMU that cannot start.
KESTREL_QEMU=/bin/false kestrel go test -count=1 -list . ./... >"$work/out" 2>&1 ||
  { cat "$work/out"; fail "go test -list needed a VM"; }
grep -qx TestRunsInAKestrelVM "$work/out" || fail "no test listed: $(cat "$work/out")"

# --shard K/N (docs/scale-out.md): two shards run every test once between them.
for k in 1 2; do
  kestrel go test --shard "$k/2" -count=1 -v ./... >"$work/shard.$k" 2>&1 ||
    { cat "$work/shard.$k"; fail "shard $k/2 failed"; }
done
expect_eq "tests of the two shards" "TestAdd
TestRunsInAKestrelVM
TestWritesArtifact" "$(sed -En 's/^--- (PASS|SKIP): ([A-Za-z_]*) .*/\2/p' "$work"/shard.* | sort)"
for k in 1 2; do
  grep -Eq -- '--- (PASS|SKIP)' "$work/shard.$k" || fail "shard $k/2 ran no test: $(cat "$work/shard.$k")"
done
status=0
kestrel go test --shard 3/2 ./... 2>"$work/bad" || status=$?
[ "$status" -ne 0 ] && grep -q "expected K/N with 1 <= K <= N" "$work/bad" || fail "--shard 3/2: $(cat "$work/bad")"
status=0
kestrel go test --shard 1/2 -run TestAdd ./... 2>"$work/bad" || status=$?
[ "$status" -ne 0 ] && grep -q "cannot be combined with -run" "$work/bad" || fail "--shard with -run: $(cat "$work/bad")"
echo PASS

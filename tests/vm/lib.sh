# Shared prelude of the VM integration tests (one scenario per script).
# Each test gets its own runtime dir, so it sees only its own deployments and
# can prove that it leaked no VM. Exit 77 = skipped.
set -euo pipefail
set -E
# Only where errexit is on: a status checked under `set +e` is not a failure.
trap '[[ $- == *e* ]] && echo "FAILED at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND" >&2' ERR

: "${KESTREL_BUILD_DIR:?}"
: "${KESTREL_SOURCE_DIR:?}"
KESTREL=$KESTREL_BUILD_DIR/src/kestrel
export PATH=$KESTREL_BUILD_DIR/src:$PATH

test_name=$(basename "$0" .sh)
work=$(mktemp -d "/tmp/kt-$test_name-XXXXXX")
export KESTREL_RUNTIME_DIR=$work/rt

skip() { echo "SKIPPED: $*" >&2; exit 77; }

if ! "$KESTREL" kernel ls 2>/dev/null | grep -q .; then
  skip "no guest kernel cached (run: $KESTREL kernel fetch)"
fi

# QEMU processes that belong to this test (their command lines name our runtime dir).
our_qemus() { pgrep -f "qemu-system.*$KESTREL_RUNTIME_DIR" || true; }

finish() {
  local status=$?
  local leaked
  leaked=$(our_qemus)
  if [ -n "$leaked" ]; then
    echo "LEAK: QEMU processes left behind: $leaked" >&2
    kill -9 $leaked 2>/dev/null || true
    [ $status -eq 0 ] && status=1
  fi
  if [ $status -eq 0 ] || [ $status -eq 77 ]; then
    rm -rf "$work"
  else
    echo "kept for inspection: $work" >&2
  fi
  exit $status
}
trap finish EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" != "$3" ]; then
    fail "$1: expected [$2], got [$3]"
  fi
}

# Deployment directories currently in our runtime dir.
# (.slots holds the slot limiter's locks, not a deployment.)
deployments() { find "$KESTREL_RUNTIME_DIR" -mindepth 1 -maxdepth 1 -type d ! -name .slots 2>/dev/null || true; }

# Boots a VM that stays up (`run --keep always -- /bin/true`, extra run
# options in "$@"); sets vm_name and vm_dir.
start_kept_vm() {
  local err line
  err=$(mktemp "$work/kept-XXXXXX")
  "$KESTREL" run --keep always "$@" -- /bin/true 2>"$err" || fail "could not start a kept VM: $(cat "$err")"
  line=$(grep 'remains running' "$err") || fail "no 'remains running' line: $(cat "$err")"
  [[ $line =~ VM\ ([a-z0-9-]+)\ remains\ running.*deployment\ dir\ (.+)$ ]] || fail "odd line: $line"
  vm_name=${BASH_REMATCH[1]}
  vm_dir=${BASH_REMATCH[2]}
}

# Milliseconds since the epoch.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

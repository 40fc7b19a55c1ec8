# kestrel doctor: on a working host it passes; every warning and problem comes
# with a fix; on PVM hosts it reports TCG and explains why; broken parts are
# problems with the command that fixes them.
source "$(dirname "$0")/lib.sh"

# Every "warn"/"FAIL" line is followed by a "fix:" line.
check_fixes() {
  awk '{ if (want && $0 !~ /^ +fix: /) { print "no fix for: " prev; bad = 1 }
         want = ($0 ~ /^(warn|FAIL) /); prev = $0 }
       END { if (want) { print "no fix for: " prev; bad = 1 }; exit bad }' "$1" ||
    fail "a finding without a fix: $(cat "$1")"
}

kestrel doctor >"$work/out" 2>&1 || { cat "$work/out"; fail "doctor found problems on the test host"; }
check_fixes "$work/out"
grep -q "^ok    kernel   $(guest_kernel) " "$work/out" || fail "no kernel line: $(cat "$work/out")"
grep -q '^ok    qemu     QEMU ' "$work/out" || fail "no QEMU line"
if [ -e /sys/module/kvm_pvm ] && [ ! -e /sys/module/kvm_intel ] && [ ! -e /sys/module/kvm_amd ]; then
  grep -q '^warn  accel    TCG (software emulation): /dev/kvm is provided by kvm_pvm (PVM)' "$work/out" ||
    fail "the PVM verdict is not explained: $(cat "$work/out")"
fi

# Broken: no QEMU in PATH, no kernel in the cache.
set +e
env PATH=/nonexistent KESTREL_CACHE_DIR="$work/empty-cache" "$KESTREL" doctor >"$work/out" 2>&1
status=$?
set -e
expect_eq "exit status with problems" 1 "$status"
check_fixes "$work/out"
grep -A1 '^FAIL  qemu' "$work/out" | grep -q 'fix: sudo apt-get install qemu-system-x86' || fail "no QEMU fix: $(cat "$work/out")"
grep -A1 '^FAIL  kernel' "$work/out" | grep -q 'fix: kestrel kernel fetch' || fail "no kernel fix: $(cat "$work/out")"

# A bad project file is a problem too, named by line.
mkdir "$work/p" && printf 'slots = -1\n' >"$work/p/kestrel.toml"
set +e
(cd "$work/p" && kestrel doctor) >"$work/out" 2>&1
status=$?
set -e
expect_eq "exit status with a bad file" 1 "$status"
grep -q '^FAIL  config   kestrel.toml:1: slots: -1 is out of range' "$work/out" || fail "bad file not reported: $(cat "$work/out")"
echo PASS

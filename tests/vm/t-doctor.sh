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
# The accelerator line of this machine agrees with its host line.
host_line=$(grep '^ok    host     ' "$work/out") || fail "no host line: $(cat "$work/out")"
if host_has_usable_kvm; then
  grep -q '^ok    accel    KVM (kvm_\(intel\|amd\))' "$work/out" || grep -q '^warn  accel    KVM' "$work/out" ||
    fail "KVM here, but: $(grep accel "$work/out")"
else
  grep -q '^warn  accel    TCG (software emulation): ' "$work/out" || fail "no KVM here ($host_line), but: $(cat "$work/out")"
fi

# Every kind of host, on this machine (a fake host's facts: make_fake_host):
# the facts, the accelerator they give and the fix. Run with a cache of its
# own: no KVM verdict of this machine applies there.
doctor_on() { # doctor_on VARIANT [as_unprivileged]: its host, accel and fix lines
  local root=$work/host-$1
  make_fake_host "$1" "$root"
  { ${2:-} env KESTREL_HOST_ROOT="$root" KESTREL_CACHE_DIR="$work/fake-cache" "$KESTREL" doctor 2>&1 || true; } |
    awk '/^(ok|warn|FAIL) +(host|accel) / { print; take = 1; next } take && /^ +fix: / { print } { take = 0 }' 
}
expect_doctor() { # expect_doctor VARIANT EXPECTED [as_unprivileged]
  local got
  got=$(doctor_on "$1" "${3:-}")
  [ "$got" = "$2" ] || fail "doctor on a fake $1 host:
expected:
$2
got:
$got"
}
fix='               fix:'
expect_doctor intel-kvm "ok    host     Intel CPU with VT-x; KVM modules: kvm kvm_intel; /dev/kvm usable
ok    accel    KVM (kvm_intel)"
expect_doctor amd-kvm "ok    host     AMD CPU with AMD-V; KVM modules: kvm kvm_amd (nested on); /dev/kvm usable
ok    accel    KVM (kvm_amd)"
expect_doctor pvm "ok    host     AMD CPU, itself a VM; KVM modules: kvm kvm_pvm; /dev/kvm usable
warn  accel    TCG (software emulation): /dev/kvm is provided by kvm_pvm (PVM), which boots only PVM-enabled guest kernels; a standard kernel hangs under it. TCG boots and runs every guest, only slower.
$fix none on this host: KVM needs a host with kvm_intel or kvm_amd (bare metal or nested virtualization); set accel = \"tcg\" to make the choice explicit"
expect_doctor pvm-no-dev "ok    host     AMD CPU, itself a VM; KVM modules: kvm kvm_pvm; no /dev/kvm
warn  accel    TCG (software emulation): there is no /dev/kvm (kvm_pvm is loaded: PVM, which boots only PVM-enabled guest kernels even where it makes one). TCG boots and runs every guest, only slower.
$fix none on this host: KVM needs a host with kvm_intel or kvm_amd (bare metal or nested virtualization); set accel = \"tcg\" to make the choice explicit"
chmod 755 "$work"
expect_doctor kvm-not-ours "ok    host     Intel CPU with VT-x; KVM modules: kvm kvm_intel; /dev/kvm not ours to open (Permission denied)
warn  accel    TCG (software emulation): /dev/kvm is not accessible to you (Permission denied)
$fix sudo usermod -aG kvm \$USER  (then log in again)" as_unprivileged
expect_doctor no-kvm "ok    host     Intel CPU with VT-x; KVM modules: none; no /dev/kvm
warn  accel    TCG (software emulation): there is no /dev/kvm (no KVM module is loaded)
$fix sudo modprobe kvm_intel"
# Forced KVM where there is none is a problem, with its fix.
make_fake_host pvm-no-dev "$work/host-forced"
KESTREL_HOST_ROOT=$work/host-forced KESTREL_ACCEL=kvm "$KESTREL" doctor >"$work/out" 2>&1 && fail "forced KVM without /dev/kvm passed"
grep -A1 '^FAIL  accel    KESTREL_ACCEL=kvm, but there is no /dev/kvm' "$work/out" | grep -q 'fix: set accel = "auto"' ||
  fail "forced KVM without /dev/kvm: $(cat "$work/out")"

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

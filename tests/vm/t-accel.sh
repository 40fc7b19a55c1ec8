# The accelerator is detected, not assumed, on every kind of host: this
# machine as it is, then fake hosts (make_fake_host) of each kind booted here.
# A PVM host (with or without /dev/kvm) gets TCG by itself; a KVM host gets
# KVM, and where KVM then fails to boot (here, when this machine has none)
# the run falls back to TCG, says so once and remembers it; forced KVM that
# crashes or hangs fails within the boot deadline, saying why.
# kestrel-test-timeout: 600
source "$(dirname "$0")/lib.sh"
# KVM verdicts are remembered in the cache: this test's own.
use_own_cache

accel_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vms"][0]["accel"])' "$1/deployment.json"; }

# run_on VARIANT: `run --keep always -- /bin/true` on a fake host; sets
# run_accel and run_err (its stderr), and destroys the VM.
run_on() {
  local root=$work/host-$1
  [ -d "$root" ] || make_fake_host "$1" "$root"
  run_err=$work/err-$1
  KESTREL_HOST_ROOT=$root "$KESTREL" run --keep always -- /bin/true 2>"$run_err" ||
    fail "a run on a fake $1 host failed: $(cat "$run_err")"
  local dir
  dir=$(start_dir "$run_err")
  run_accel=$(accel_of "$dir")
  "$KESTREL" destroy -f "$dir" >/dev/null
}

# 1. This machine: the accelerator a run gets is the one doctor names.
run_on_here=$work/err-here
"$KESTREL" run --keep always -- /bin/true 2>"$run_on_here"
dir=$(start_dir "$run_on_here")
accel=$(accel_of "$dir")
"$KESTREL" destroy -f "$dir" >/dev/null
doctor_accel=$("$KESTREL" doctor 2>&1 | sed -n 's/^\(ok\|warn\) *accel *\(KVM\|TCG\).*/\2/p' | tr 'A-Z' 'a-z')
expect_eq "this machine's accelerator (doctor: $doctor_accel)" "$doctor_accel" "$accel"
echo "this machine: $accel ($("$KESTREL" doctor 2>&1 | sed -n 's/^ok    host     //p'))"

# 2. PVM hosts, with and without /dev/kvm: TCG, chosen up front.
for variant in pvm pvm-no-dev no-kvm; do
  run_on "$variant"
  expect_eq "accelerator on a fake $variant host" tcg "$run_accel"
  ! grep -q 'falling back' "$run_err" || fail "a $variant host tried KVM: $(cat "$run_err")"
done

# 3. KVM hosts: KVM is chosen. On a machine whose KVM works, the run uses
# it; anywhere else QEMU fails under KVM, and the run falls back to TCG,
# says so and remembers it, so the next run goes to TCG at once.
for variant in intel-kvm amd-kvm; do
  run_on "$variant"
  if host_has_usable_kvm; then
    expect_eq "accelerator on a fake $variant host with real KVM" kvm "$run_accel"
  else
    expect_eq "accelerator after the fallback on a fake $variant host" tcg "$run_accel"
    grep -q 'falling back to TCG (remembered for this host)' "$run_err" || fail "no fallback notice: $(cat "$run_err")"
    run_on "$variant"
    expect_eq "accelerator the second time" tcg "$run_accel"
    ! grep -q 'falling back' "$run_err" || fail "the verdict was not remembered: $(cat "$run_err")"
    KESTREL_HOST_ROOT=$work/host-$variant "$KESTREL" doctor 2>&1 | grep -q '^warn  accel    KVM (kvm_[a-z]*); but KVM failed to boot here before' ||
      fail "doctor does not show the remembered verdict"
  fi
done

# A KVM host whose QEMU was built without KVM: TCG, chosen up front (QEMU
# is asked, `-accel help`), no fallback.
cat >"$work/qemu-without-kvm" <<SH
#!/bin/sh
case " \$* " in *" -accel help "*) printf 'Accelerators supported in QEMU binary:\ntcg\n'; exit 0 ;; esac
exec $(command -v qemu-system-x86_64) "\$@"
SH
chmod +x "$work/qemu-without-kvm"
KESTREL_QEMU=$work/qemu-without-kvm run_on intel-kvm
expect_eq "accelerator with a QEMU without KVM" tcg "$run_accel"
! grep -q 'falling back' "$run_err" || fail "KVM was tried with a QEMU without it: $(cat "$run_err")"
KESTREL_HOST_ROOT=$work/host-intel-kvm KESTREL_QEMU=$work/qemu-without-kvm "$KESTREL" doctor 2>&1 |
  grep -q '^warn  accel    TCG (software emulation): QEMU was built without KVM (its accelerators: tcg)' ||
  fail "doctor does not say QEMU lacks KVM"

# 4. Forced KVM where QEMU crashes under it (AMD hosts with PVM: "failed to
# set MSR", SIGABRT) or hangs (Intel hosts with PVM: a guest stuck after
# "Probing EDD"), on a fake PVM host: a stand-in QEMU does either whenever
# it is asked for KVM, so this runs on every machine.
make_fake_host pvm "$work/host-forced"
real_qemu=$(command -v qemu-system-x86_64)
stand_in() { # stand_in NAME ACTION: a QEMU that does ACTION under KVM
  cat >"$work/$1" <<SH
#!/bin/sh
case " \$* " in *accel=kvm*) $2 ;; esac
exec $real_qemu "\$@"
SH
  chmod +x "$work/$1"
}
stand_in qemu-aborts-on-kvm 'echo "stand-in: failed to set MSR 0x10a" >&2; kill -ABRT $$'
stand_in qemu-hangs-on-kvm 'exec sleep 3600'
for qemu in qemu-aborts-on-kvm qemu-hangs-on-kvm; do
  start=$(date +%s)
  set +e
  KESTREL_HOST_ROOT=$work/host-forced KESTREL_QEMU=$work/$qemu KESTREL_ACCEL=kvm timeout 60 "$KESTREL" run -- /bin/true 2>"$work/err"
  status=$?
  set -e
  expect_eq "forced KVM, $qemu: exit status" 125 "$status"
  took=$(($(date +%s) - start))
  [ "$took" -le 30 ] || fail "forced KVM, $qemu: took $took s to fail"
  grep -q 'did not boot' "$work/err" || fail "no 'did not boot' in: $(cat "$work/err")"
  grep -q 'PVM' "$work/err" || fail "the message does not explain PVM: $(cat "$work/err")"
  if [ "$qemu" = qemu-aborts-on-kvm ]; then
    grep -q 'did not boot: QEMU failed under KVM' "$work/err" || fail "no KVM verdict in: $(cat "$work/err")"
    grep -q 'SIGABRT' "$work/err" || fail "the message does not say how QEMU died: $(cat "$work/err")"
    grep -q 'failed to set MSR' "$work/err" || fail "the message does not quote QEMU: $(cat "$work/err")"
    # QEMU never ran: no console lines and no pointer to a console log.
    ! grep -q 'last console lines\|console log:' "$work/err" || fail "console lines of another VM: $(cat "$work/err")"
  fi
  [ -z "$(our_qemus)" ] || fail "a failed boot left QEMU running"
  [ -z "$(pgrep -f "sleep 3600" || true)" ] || fail "the hanging stand-in was left running"
  "$KESTREL" gc >/dev/null
  [ -z "$(deployments)" ] || fail "gc left deployments: $(deployments)"
done

# 5. Forced KVM where there is no /dev/kvm: refused before any VM.
set +e
KESTREL_HOST_ROOT=$work/host-pvm-no-dev KESTREL_ACCEL=kvm "$KESTREL" run -- /bin/true 2>"$work/err"
status=$?
set -e
expect_eq "forced KVM without /dev/kvm: exit status" 125 "$status"
grep -q 'KESTREL_ACCEL=kvm, but there is no /dev/kvm' "$work/err" || fail "odd message: $(cat "$work/err")"
[ -z "$(deployments)" ] || fail "a refused run left deployments: $(deployments)"
echo PASS

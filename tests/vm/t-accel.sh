# The accelerator is detected, not assumed: on a PVM host /dev/kvm exists but
# cannot boot a normal kernel, so kestrel must pick TCG by itself, and a
# forced KESTREL_ACCEL=kvm must fail within the boot deadline, saying why.
source "$(dirname "$0")/lib.sh"

"$KESTREL" run --keep always -- /bin/true 2>"$work/err"
dir=$(sed -n 's/^kestrel: VM [a-z0-9-]*, deployment dir \(.*\)$/\1/p' "$work/err")
accel=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vms"][0]["accel"])' "$dir/deployment.json")
"$KESTREL" destroy -f "$dir"

if [ -e /sys/module/kvm_pvm ] && [ ! -e /sys/module/kvm_intel ] && [ ! -e /sys/module/kvm_amd ]; then
  expect_eq "auto accelerator on a PVM host" tcg "$accel"
  start=$(date +%s)
  set +e
  KESTREL_ACCEL=kvm timeout 60 "$KESTREL" run -- /bin/true 2>"$work/err"
  status=$?
  set -e
  elapsed=$(( $(date +%s) - start ))
  expect_eq "forced KVM exit status" 125 "$status"
  [ "$elapsed" -le 30 ] || fail "forced KVM took $elapsed s to fail"
  grep -q 'did not boot' "$work/err" || fail "no 'did not boot' in: $(cat "$work/err")"
  grep -q 'PVM' "$work/err" || fail "the message does not explain PVM: $(cat "$work/err")"
  grep -q 'console log: ' "$work/err" || fail "the message does not name the console log: $(cat "$work/err")"
  # The failed VM is gone; its directory stays for the logs until gc.
  [ -z "$(our_qemus)" ] || fail "a failed boot left QEMU running"
  "$KESTREL" ls | grep -q ' dead ' || fail "the failed deployment is not listed as dead: $("$KESTREL" ls)"
  "$KESTREL" gc | grep -q '(dead)$' || fail "gc did not remove the failed deployment"
  [ -z "$(deployments)" ] || fail "gc left deployments: $(deployments)"
else
  echo "not a PVM host; accelerator chosen: $accel"
fi

# QEMU that crashes under forced KVM (as on AMD hosts with PVM: "failed to
# set MSR", SIGABRT) gets the same verdict as one that hangs, on any host
# with /dev/kvm: a stand-in QEMU aborts whenever it is asked for KVM.
if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  real_qemu=$(command -v qemu-system-x86_64)
  cat >"$work/qemu-aborts-on-kvm" <<SH
#!/bin/sh
case " \$* " in *accel=kvm*) echo "stand-in: failed to set MSR 0x10a" >&2; kill -ABRT \$\$ ;; esac
exec $real_qemu "\$@"
SH
  chmod +x "$work/qemu-aborts-on-kvm"
  start=$(date +%s)
  set +e
  KESTREL_QEMU=$work/qemu-aborts-on-kvm KESTREL_ACCEL=kvm timeout 60 "$KESTREL" run -- /bin/true 2>"$work/err"
  status=$?
  set -e
  expect_eq "forced KVM, QEMU aborting: exit status" 125 "$status"
  [ $(($(date +%s) - start)) -le 30 ] || fail "a QEMU crashing under KVM took too long to report"
  grep -q 'did not boot: QEMU failed under KVM' "$work/err" || fail "no KVM verdict in: $(cat "$work/err")"
  grep -q 'SIGABRT' "$work/err" || fail "the message does not say how QEMU died: $(cat "$work/err")"
  grep -q 'failed to set MSR' "$work/err" || fail "the message does not quote QEMU: $(cat "$work/err")"
  # QEMU never ran: no console lines (once: the template's old boot) and no
  # pointer to a console log that does not exist.
  ! grep -q 'last console lines\|console log:' "$work/err" || fail "console lines of another VM: $(cat "$work/err")"
  if [ -e /sys/module/kvm_pvm ] && [ ! -e /sys/module/kvm_intel ] && [ ! -e /sys/module/kvm_amd ]; then
    grep -q 'PVM' "$work/err" || fail "the message does not explain PVM: $(cat "$work/err")"
  fi
  [ -z "$(our_qemus)" ] || fail "a crashed boot left QEMU running"
  "$KESTREL" gc >/dev/null
fi
echo PASS

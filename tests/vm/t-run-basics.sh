# Exit statuses, separate stdout/stderr, signals, hostname and kernel.
source "$(dirname "$0")/lib.sh"

set +e
"$KESTREL" run --keep never -- /bin/sh -c 'echo out; echo err >&2; exit 7' >"$work/out" 2>"$work/err"
status=$?
set -e
expect_eq "exit status" 7 "$status"
expect_eq "stdout" out "$(cat "$work/out")"
grep -qx err "$work/err" || fail "stderr lacks 'err': $(cat "$work/err")"
grep -q '^kestrel: VM [a-z0-9-]*, deployment dir /' "$work/err" || fail "no start line on stderr"

set +e
"$KESTREL" run -q --keep never -- /bin/sh -c 'kill -SEGV $$' 2>"$work/err"
status=$?
set -e
expect_eq "death by SIGSEGV" 139 "$status"

# The VM's hostname is its name; the kernel is the guest's, not the host's.
out=$("$KESTREL" run --name hello -- /bin/sh -c 'echo "$(hostname) $(uname -r)"' 2>"$work/err")
name=$(sed -n 's/^kestrel: VM \([a-z0-9-]*\), deployment dir .*/\1/p' "$work/err")
[[ $name == hello-* ]] || fail "VM name '$name' does not derive from --name"
expect_eq "hostname" "$name" "${out%% *}"
guest_kernel=${out#* }
host_kernel=$(uname -r)
[ "$guest_kernel" != "$host_kernel" ] || fail "guest kernel equals host kernel ($host_kernel)"
expect_eq "guest kernel (the configured one)" "$(guest_kernel)" "$guest_kernel"

# Successful runs leave nothing behind.
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

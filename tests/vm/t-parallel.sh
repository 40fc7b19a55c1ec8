# Runs started at the same moment never collide.
source "$(dirname "$0")/lib.sh"

runs_at_once 4 /bin/sh -c 'hostname'
expect_eq "failed runs" 0 "$failed"
names=$(cat "$work"/out.* | sort -u | wc -l)
expect_eq "distinct VM names" 4 "$names"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

# Runs started at the same moment never collide.
source "$(dirname "$0")/lib.sh"

for i in 1 2 3 4; do
  "$KESTREL" run --keep never -- /bin/sh -c 'hostname' >"$work/out.$i" 2>"$work/err.$i" &
done
failed=0
for job in $(jobs -p); do wait "$job" || failed=$((failed + 1)); done
expect_eq "failed runs" 0 "$failed"
names=$(cat "$work"/out.* | sort -u | wc -l)
expect_eq "distinct VM names" 4 "$names"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

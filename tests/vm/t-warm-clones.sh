# Warm starts: runs restore clones of a template, and clones are independent
# VMs: their own hostname, a correct clock, and fresh entropy each.
source "$(dirname "$0")/lib.sh"

"$KESTREL" run -q -- /bin/true  # makes sure the template exists
# A clone's memory is the template's as saved: without the clock set at
# start, a clone would be at least this much behind.
sleep 3

probe='echo "$(hostname) $(date +%s) $(head -c 16 /dev/urandom | od -An -x | tr -d " \n")"'
for i in 1 2; do
  "$KESTREL" run --keep always -- /bin/sh -c "$probe" >"$work/out.$i" 2>"$work/err.$i" &
done
wait
host_now=$(date +%s)
for i in 1 2; do
  dir=$(start_dir "$work/err.$i")
  expect_eq "clone $i started warm" warm "$(vm_start "$dir")"
  read -r host clock random <"$work/out.$i"
  expect_eq "clone $i hostname" "$(start_name "$work/err.$i")" "$host"
  skew=$((host_now - clock))
  [ "${skew#-}" -le 5 ] || fail "clone $i clock is $skew s off the host's"
  echo "$random" >>"$work/randoms"
  "$KESTREL" destroy -f "$dir"
done
[ "$(sort -u "$work/randoms" | wc -l)" -eq 2 ] || fail "two clones produced the same random bytes: $(cat "$work/randoms")"

# The clock is set when the run starts, not when the template was saved.
out=$("$KESTREL" run -q -- /bin/sh -c 'date +%s')
skew=$(($(date +%s) - out))
[ "${skew#-}" -le 2 ] || fail "clone clock is $skew s off"

# --cold boots from scratch and behaves the same.
set +e
"$KESTREL" run --cold --keep never -- /bin/sh -c 'echo cold; exit 3' >"$work/out" 2>"$work/err"
status=$?
set -e
expect_eq "cold exit status" 3 "$status"
expect_eq "cold output" cold "$(cat "$work/out")"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

# The program runs at its own path, through the VM's read-only root with a
# throw-away layer: the guest can change neither the program file (mode,
# mtime, contents) nor anything else outside the trees shared read-write.
# A copy of dash in /usr/local/bin stands in for a system binary: if this
# test fails, no real system file was harmed.
source "$(dirname "$0")/lib.sh"

victim=/usr/local/bin/kt-dash-$$
cp /bin/dash "$victim"
chmod 0755 "$victim"
touch -d '2001-02-03 04:05:06' "$victim"
# Removed whatever happens, keeping the test's own status for finish.
trap 'status=$?; rm -f "$victim"; (exit $status); finish' EXIT
before=$(stat -c '%a %Y %s %i' "$victim")
sum=$(sha256sum <"$victim")

# As root in the guest: touch, chmod setuid, remove and replace the program itself.
"$KESTREL" run --keep never -- "$victim" -c 'touch -c "$0" && chmod 4755 "$0" && rm "$0" && echo replaced >"$0" && echo "$0 changed in the VM"' \
  >"$work/out" 2>"$work/err" || fail "the run failed: $(cat "$work/err")"
expect_eq "guest output" "$victim changed in the VM" "$(cat "$work/out")"
expect_eq "host file after the run (mode mtime size inode)" "$before" "$(stat -c '%a %Y %s %i' "$victim")"
expect_eq "host file contents" "$sum" "$(sha256sum <"$victim")"

# A user's script: same, and writes next to it or anywhere else vanish.
mkdir "$work/proj"
cat >"$work/proj/writer" <<'SH'
#!/bin/sh
chmod 4755 "$0"; touch "$0"
echo "written in $(hostname)" >"$(dirname "$0")/artifact.txt"
echo nope >/etc/kestrel-should-not-exist
echo "$0"
SH
chmod 0755 "$work/proj/writer"
touch -d '2001-02-03 04:05:06' "$work/proj/writer"
before=$(stat -c '%a %Y' "$work/proj/writer")
out=$("$KESTREL" run --keep never -- "$work/proj/writer" 2>"$work/err") || fail "writer failed: $(cat "$work/err")"
expect_eq "the program runs at its own path" "$work/proj/writer" "$out"
expect_eq "script mode and mtime" "$before" "$(stat -c '%a %Y' "$work/proj/writer")"
[ ! -e "$work/proj/artifact.txt" ] || fail "a write outside any read-write share reached the host"
[ ! -e /etc/kestrel-should-not-exist ] || fail "a guest write reached the host's /etc"

# A read-write share is the way to write to the host; a comma in its path
# (possible in kestrel.toml, whose lists are TOML arrays) is escaped for
# QEMU, not read as the start of another option.
odd="$work/out,readonly=on"
mkdir "$odd" "$work/tomlproj"
printf 'share = ["%s:rw"]\n' "$odd" >"$work/tomlproj/kestrel.toml"
(cd "$work/tomlproj" && "$KESTREL" run --keep never -- /bin/sh -c "echo ok >'$odd/f'") 2>"$work/err" ||
  fail "a share with a comma in its path failed: $(cat "$work/err")"
expect_eq "file written through a comma share" ok "$(cat "$odd/f")"

# Shares that would hide the guest's own mounts are refused before any VM.
set +e
"$KESTREL" run --share /:rw -- /bin/true 2>"$work/err"
status=$?
set -e
expect_eq "--share / status" 2 "$status"
grep -q 'the root is shared already' "$work/err" || fail "no reason for --share /: $(cat "$work/err")"
for reserved in /proc /sys/kernel /dev; do
  set +e
  "$KESTREL" run --share "$reserved:ro" -- /bin/true 2>"$work/err"
  status=$?
  set -e
  [ "$status" -ne 0 ] || fail "--share $reserved was accepted"
  grep -q "cannot share $reserved: the guest mounts its own" "$work/err" || fail "no reason for $reserved: $(cat "$work/err")"
done
[ -z "$(our_qemus)" ] || fail "a refused share started QEMU"
# An ancestor of the runtime dir shared read-only does not break the run.
"$KESTREL" run --keep never --share /tmp:ro -- /bin/true 2>"$work/err" || fail "--share /tmp:ro: $(cat "$work/err")"

# A program under /run (the guest mounts its own tmpfs there) still runs.
rundir=$(mktemp -d /run/kt-own-path-XXXXXX)
cp "$work/proj/writer" "$rundir/prog"
out=$("$KESTREL" run --keep never -- "$rundir/prog" 2>"$work/err") || { rm -rf "$rundir"; fail "program in /run: $(cat "$work/err")"; }
rm -rf "$rundir"
expect_eq "program under /run" "$rundir/prog" "$out"
[ -z "$(deployments)" ] || fail "runs left deployments: $(deployments)"
echo PASS

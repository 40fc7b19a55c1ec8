# The program's own directory (the bay) is the host's: what it writes there
# is on the host after the run, at the same path.
source "$(dirname "$0")/lib.sh"

cat >"$work/writer" <<'SH'
#!/bin/sh
here=$(dirname "$0")
echo "written in $(hostname)" >"$here/artifact.txt"
# Writes elsewhere land in the VM's throw-away layer, never on the host.
echo nope >/etc/kestrel-should-not-exist
SH
chmod +x "$work/writer"
"$KESTREL" run --keep always -- "$work/writer" 2>"$work/err"
dir=$(sed -n 's/^kestrel: VM [a-z0-9-]*, deployment dir \(.*\)$/\1/p' "$work/err")
name=$(sed -n 's/^kestrel: VM \([a-z0-9-]*\), deployment dir .*/\1/p' "$work/err")
[ -d "$dir/bay" ] || fail "no bay in $dir"
expect_eq "artifact" "written in $name" "$(cat "$dir/bay/artifact.txt")"
[ ! -e /etc/kestrel-should-not-exist ] || fail "a guest write reached the host's /etc"
"$KESTREL" destroy -f "$dir"
[ ! -e "$dir" ] || fail "destroy left $dir"
echo PASS

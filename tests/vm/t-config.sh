# kestrel.toml in a parent directory and KESTREL_* variables set what a run
# gets (memory, CPUs, shares, environment), `kestrel config` shows each value's
# origin, the command line wins, and a malformed file stops kestrel with
# PATH:LINE before any VM starts.
source "$(dirname "$0")/lib.sh"

proj=$work/proj
mkdir -p "$proj/sub" "$work/rw" "$work/ro"
echo host-data >"$work/ro/file"
cat >"$proj/kestrel.toml" <<TOML
memory = 300
cpus = 2
share = ["$work/rw:rw", "../ro"]  # relative to this file: $work/ro, read-only

[env]
deny = ["SECRET_*"]
TOML
cd "$proj/sub"

export KESTREL_TIMEOUT=60
kestrel config >"$work/config"
origin() { grep "^$1 = " "$work/config" | sed 's/.*# //'; }
expect_eq "memory's origin" "project file $proj/kestrel.toml:1" "$(origin memory)"
expect_eq "cpus's origin" "project file $proj/kestrel.toml:2" "$(origin cpus)"
expect_eq "timeout's origin" "environment KESTREL_TIMEOUT" "$(origin timeout)"
expect_eq "keep's origin" "default" "$(origin keep)"
grep -q "^share = \[\"$work/rw:rw\", \"$work/ro:ro\"\]" "$work/config" || fail "shares not resolved: $(cat "$work/config")"
expect_eq "the command line wins" "cpus = 3" "$(kestrel config --cpus 3 | grep '^cpus = ' | sed 's/ *#.*//')"

# One VM shows that the run got all of it.
SECRET_TOKEN=hidden PLAIN=visible kestrel run -q -- /bin/sh -c "
  nproc
  awk '/MemTotal/ {print \$2}' /proc/meminfo
  echo \"[\$SECRET_TOKEN][\$PLAIN]\"
  echo written >$work/rw/out
  cat $work/ro/file
  if echo x 2>/dev/null >$work/ro/new; then echo ro-writable; else echo ro-refused; fi
" >"$work/out" 2>&1 || { cat "$work/out"; fail "the run failed"; }
mapfile -t lines <"$work/out"
expect_eq "CPUs" 2 "${lines[0]}"
mem_kib=${lines[1]}
[ "$mem_kib" -gt $((200 * 1024)) ] && [ "$mem_kib" -le $((300 * 1024)) ] || fail "MemTotal $mem_kib KiB is not about 300 MiB"
expect_eq "environment (SECRET_* denied)" "[][visible]" "${lines[2]}"
expect_eq "read-only share" host-data "${lines[3]}"
expect_eq "write to the read-only share" ro-refused "${lines[4]}"
expect_eq "write through the read-write share" written "$(cat "$work/rw/out")"
[ ! -e "$work/ro/new" ] || fail "a write reached the read-only share"

# A malformed file: PATH:LINE: message, non-zero, and no VM.
printf 'memory = 300\ncpus = "two"\n' >"$proj/kestrel.toml"
cd "$proj"
set +e
kestrel run -- /bin/true 2>"$work/err"
status=$?
set -e
expect_eq "run's exit status" 125 "$status"
expect_eq "run's message" "kestrel: error: kestrel.toml:2: cpus: expected an integer from 1 to 64, got a string" "$(cat "$work/err")"
set +e
kestrel config >/dev/null 2>"$work/err"
status=$?
set -e
expect_eq "config's exit status" 1 "$status"
grep -q '^kestrel: error: kestrel.toml:2: ' "$work/err" || fail "config did not name the line: $(cat "$work/err")"
[ -z "$(deployments)" ] || fail "a deployment was made despite the bad file"
echo PASS

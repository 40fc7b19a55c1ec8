# Images (docs/images.md): examples/postgres's recipe is built once (stages
# shown), a second build is a cache hit, 8 parallel runs each get their own
# disk and database with PostgreSQL already running, the image and template
# files are never written, `image ls` and `image rm` work, a recipe
# naming a package that does not exist fails cleanly, and one whose `files`
# would write through a link of its own making is refused.
# kestrel-test-timeout: 1200
source "$(dirname "$0")/lib.sh"

recipe=$KESTREL_SOURCE_DIR/examples/postgres/images/pg.toml
image_field() { # image_field NAME FIELD: from `image ls --json`, the current image NAME
  "$KESTREL" image ls --json | python3 -c '
import json, sys
for i in json.load(sys.stdin):
    if i["name"] == sys.argv[1] and i["current"]:
        v = i[sys.argv[2]]
        print(" ".join(v) if isinstance(v, list) else v)
        break' "$1" "$2"
}

# 1. The build, with its stages (unless an earlier test built it already).
had_image=$(image_field pg id)
"$KESTREL" image build "$recipe" >"$work/build1" 2>&1 || fail "image build failed: $(cat "$work/build1")"
if [ -z "$had_image" ]; then
  for stage in resolve download unpack image provision services; do
    grep -q "^kestrel: image pg: $stage done in [0-9.]* s" "$work/build1" || fail "no '$stage' stage: $(cat "$work/build1")"
  done
  grep -q "^kestrel: image pg ([0-9a-f]\{16\}) built in" "$work/build1" || fail "no summary: $(cat "$work/build1")"
fi
id=$(image_field pg id)
dir=$(image_field pg dir)
[ -n "$id" ] && [ -f "$dir/disk.qcow2" ] || fail "no image after the build: $("$KESTREL" image ls)"

# 2. A second build of the unchanged recipe is a cache hit.
start=$(now_ms)
"$KESTREL" image build "$recipe" 2>"$work/build2" || fail "second build failed: $(cat "$work/build2")"
took=$(($(now_ms) - start))
grep -q "image pg ($id) is up to date" "$work/build2" || fail "not a cache hit: $(cat "$work/build2")"
echo "cache hit in $took ms"
[ "$took" -lt 1000 ] || fail "the cache hit took $took ms"

# 3. Eight runs at once: each sees only its own file and its own table.
cat >"$work/probe.sh" <<'PROBE'
set -e
ls /root | grep -c '^mine-' || true
touch "/root/mine-$KESTREL_VM"
psql -h 127.0.0.1 -U postgres -Atqc "CREATE TABLE mine (vm text)"
psql -h 127.0.0.1 -U postgres -Atqc "INSERT INTO mine VALUES ('$KESTREL_VM')"
psql -h 127.0.0.1 -U postgres -Atc "SELECT count(*) || ' ' || min(vm) FROM mine"
ls /root | grep -c '^mine-'
PROBE
templates=$(image_field pg templates)
[ -n "$templates" ] || fail "no template of the image"
# The image's templates live in the shared cache, where other tests' runs
# may prune an old one (unused for an hour) meanwhile: a file that is gone
# was not written; one that is there must be unchanged.
sums() {
  local f
  for f in "$dir/disk.qcow2" $(for t in $templates; do echo "$t/disk.qcow2"; done); do
    [ ! -e "$f" ] || sha256sum "$f"
  done | sort
}
before=$(sums)
cd "$work"
for i in $(seq 8); do
  "$KESTREL" run --image "$recipe" --keep never -- /bin/sh "$work/probe.sh" >"$work/out.$i" 2>"$work/err.$i" &
done
failed=0
for job in $(jobs -p); do wait "$job" || failed=$((failed + 1)); done
for i in $(seq 8); do
  name=$(start_name "$work/err.$i")
  expect_eq "run $i's own disk and database" "0
1 $name
1" "$(cat "$work/out.$i")"
done
expect_eq "failed runs" 0 "$failed"
[ -e "$dir/disk.qcow2" ] || fail "the image's disk is gone"
changed=$(comm -13 <(echo "$before") <(sums))
expect_eq "image and template files changed by the runs" "" "$changed"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"

# 4. `image ls` shows name, id, size, age and templates; `image rm` refuses
# an image a VM runs on, naming the VM.
"$KESTREL" image ls >"$work/ls"
grep -Eq "^pg +$id +[0-9.]+ [MG]iB +[0-9]+ (s|min|h|d) +[0-9a-f]{12}" "$work/ls" || fail "odd image ls: $(cat "$work/ls")"
start_kept_vm --image "$recipe"
# exec reaches the image's root, its service running.
out=$("$KESTREL" exec "$vm_name" 'test -S /var/run/postgresql/.s.PGSQL.5432 && . /etc/os-release && echo "$ID up"' -f "$vm_dir")
expect_eq "exec in an image VM" "debian up" "$out"
# The image's guest looks like a machine (docs/guest.md): localhost on IPv4
# and IPv6, its own name resolving, a machine-id no other VM has.
out=$("$KESTREL" exec "$vm_name" 'getent ahosts localhost | awk "{ print \$1 }" | sort -u; getent hosts "$(hostname)" | awk "{ print \$1 }"' -f "$vm_dir")
expect_eq "names in an image VM" "127.0.0.1
::1
127.0.1.1" "$out"
id1=$("$KESTREL" exec "$vm_name" 'cat /etc/machine-id' -f "$vm_dir")
id2=$("$KESTREL" run -q --image "$recipe" --keep never -- cat /etc/machine-id)
[[ $id1 =~ ^[0-9a-f]{32}$ && $id2 =~ ^[0-9a-f]{32}$ && $id1 != "$id2" ]] || fail "machine-ids [$id1] and [$id2]"
# The host's time zone, not the image's: this host's, then a fake host's
# (KESTREL_HOST_ROOT: its /etc/localtime and /etc/timezone; the rest of its
# facts are this host's, so the image's template is the same).
out=$("$KESTREL" run -q --image "$recipe" --keep never -- date +%z)
expect_eq "an image run's UTC offset" "$(date +%z)" "$out"
mkdir -p "$work/host/etc"
for d in dev proc sys; do ln -s "/$d" "$work/host/$d"; done
cp /usr/share/zoneinfo/Asia/Tokyo "$work/host/etc/localtime"
echo Asia/Tokyo >"$work/host/etc/timezone"
out=$(KESTREL_HOST_ROOT=$work/host "$KESTREL" run -q --image "$recipe" --keep never -- sh -c 'cat /etc/timezone; date +%z')
expect_eq "an image run's time zone on a host in Tokyo" "Asia/Tokyo
+0900" "$out"
"$KESTREL" run -q --image "$recipe" --keep never -- /bin/sh -c 'exit 7' && status=0 || status=$?
expect_eq "an image run's exit status" 7 "$status"
# A program named without a directory is the image's (the host needs none).
"$KESTREL" run -q --image "$recipe" --keep never -- psql --version | grep -q '^psql (PostgreSQL)' ||
  fail "the image's psql did not run"
"$KESTREL" image rm pg 2>"$work/rm" && fail "image rm removed an image in use"
grep -q "image pg ($id) is in use by 1 running VM.*$vm_name" <(tr '\n' ' ' <"$work/rm") || fail "odd refusal: $(cat "$work/rm")"
[ -f "$dir/disk.qcow2" ] || fail "the refused rm removed the disk"
"$KESTREL" destroy -f "$vm_dir" >/dev/null
"$KESTREL" image rm no-such-image 2>"$work/rm2" && fail "rm of an unknown image passed"
grep -q "no image named no-such-image" "$work/rm2" || fail "odd message: $(cat "$work/rm2")"

# 5. A package that does not exist: named, and nothing is left behind. The
# failed builds run in a cache of this test's own: other tests build images
# in the shared one at the same time (their .build-* trees come and go).
use_own_cache
images=$KESTREL_CACHE_DIR/images
# What an image cache holds besides the recipes' locks and references.
image_entries() { ls -A "$images" 2>/dev/null | grep -v '^\(locks\|refs\)$' || true; }
mkdir -p "$work/bad"
printf 'packages = ["kestrel-no-such-package"]\n' >"$work/bad/bad.toml"
# mmdebstrap's temporary tree goes into the build's directory, never to
# $TMPDIR (ours here, to see that nothing lands there).
mkdir -p "$work/tmp"
TMPDIR=$work/tmp "$KESTREL" image build "$work/bad/bad.toml" >"$work/bad.out" 2>&1 && fail "a missing package built"
grep -q "error: package kestrel-no-such-package does not exist in" "$work/bad.out" || fail "odd error: $(cat "$work/bad.out")"
expect_eq "image cache after the failed build" "" "$(image_entries)"
expect_eq "temporary trees left" "" "$(ls -A "$work/tmp")"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"

# 6. A provisioning command that fails: named with its status, and nothing
# is left behind (no image, no build tree, no VM).
printf 'size = "512M"\nrun = ["true", "echo about to fail; exit 3"]\n' >"$work/bad/provision.toml"
"$KESTREL" image build "$work/bad/provision.toml" >"$work/prov.out" 2>&1 && fail "a failing provisioning built"
grep -q "error: provisioning command 2 (\`echo about to fail; exit 3\`) of $work/bad/provision.toml failed with exit status 3" \
  "$work/prov.out" || fail "odd error: $(cat "$work/prov.out")"
grep -q "^about to fail" "$work/prov.out" || fail "the command's output was not shown: $(cat "$work/prov.out")"
expect_eq "image cache after the failed provisioning" "" "$(image_entries)"
[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
[ -z "$(our_qemus)" ] || fail "QEMU left running"

# 7. A recipe that makes a link to a host directory with one `files` entry and
# copies through it with the next: refused, naming the link, and nothing is
# written behind it (the copies never follow a link in the image's tree).
mkdir -p "$work/evil/d" "$work/outside"
ln -s "$work/outside" "$work/evil/d/escape"
echo pwned >"$work/evil/payload"
printf 'size = "512M"\n[files]\n"d" = "/opt/d"\n"payload" = "/opt/d/escape/pwn"\n' >"$work/evil/evil.toml"
"$KESTREL" image build "$work/evil/evil.toml" >"$work/evil.out" 2>&1 && fail "a recipe that copies through its own link built"
grep -q "error: $work/evil/evil.toml:4: files: /opt/d/escape is a symbolic link in the image" "$work/evil.out" ||
  fail "odd error: $(cat "$work/evil.out")"
expect_eq "the host directory behind the link" "" "$(ls -A "$work/outside")"
expect_eq "image cache after the refused build" "" "$(image_entries)"
echo PASS

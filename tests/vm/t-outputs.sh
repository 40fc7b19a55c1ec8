# What a test writes to its own work lands on the host (its project or
# working directory, the build tree it was built in), after a passing run and
# a failing one, owned by the invoking user; everything else it writes
# vanishes with the VM: /etc, /usr/local, /var/tmp, the rest of $HOME, a
# symlink or `..` out of the project, device nodes, other owners
# (docs/isolation.md). Probes are new files that no system has; any that
# appear are removed again.
source "$(dirname "$0")/lib.sh"

probe=kestrel-probe-$$
home_probe=$HOME/$probe
probes=("/etc/$probe" "/usr/local/$probe" "/var/tmp/$probe" "$home_probe")
trap 'status=$?; rm -f "${probes[@]}"; (exit $status); finish' EXIT

proj=$work/proj
mkdir -p "$proj/.git" "$proj/sub" "$proj/bin"
cd "$proj/sub"

# The trees are shown with --verbose.
"$KESTREL" run --keep never --verbose -- /bin/true 2>"$work/err" || fail "run failed: $(cat "$work/err")"
grep -qx "kestrel: writes reach the host in $proj: project (holds .git)" "$work/err" ||
  fail "--verbose did not name the project: $(cat "$work/err")"

# Passing and failing runs both leave their files; the failing one keeps its
# VM and a copy of its program.
"$KESTREL" run --keep never -- /bin/sh -c 'echo passed >out.txt' 2>"$work/err" || fail "run failed: $(cat "$work/err")"
expect_eq "out.txt after a passing run" passed "$(cat out.txt)"
expect_eq "owner of out.txt" "$(id -u):$(id -g)" "$(stat -c %u:%g out.txt)"
set +e
"$KESTREL" run -- /bin/sh -c 'echo failed >out-failed.txt; exit 3' 2>"$work/err"
status=$?
set -e
expect_eq "failing run's status" 3 "$status"
expect_eq "out-failed.txt after a failing run" failed "$(cat out-failed.txt)"
dir=$(sed -n 's/^kestrel: test failed (exit status 3); VM .* remains running, deployment dir //p' "$work/err")
[ -d "$dir" ] || fail "no kept deployment dir: $(cat "$work/err")"
copy=$(sed -n 's/^kestrel:   program:  \(.*\) (a copy of the program as it ran)$/\1/p' "$work/err")
expect_eq "program copy" "$dir/program/sh" "$copy"
cmp -s "$copy" "$(readlink -f /bin/sh)" || cmp -s "$copy" /bin/sh || fail "the copy differs from the program"
[ ! -L "$copy" ] && [ "$(stat -c %h "$copy")" = 1 ] || fail "the copy is a link, not a copy"
"$KESTREL" destroy -f "$dir" >/dev/null

# Writes anywhere else vanish: system directories, the rest of $HOME, a
# symlink to /etc inside the project, `..` out of the project.
ln -s /etc "$proj/etc-link"
"$KESTREL" run --keep never -- /bin/sh -c "
  for f in ${probes[*]} '$proj/etc-link/$probe' '$proj/../escaped-$$'; do echo x >\"\$f\" || exit 1; done
  echo kept >'$proj/kept.txt'" 2>"$work/err" || fail "probe run failed: $(cat "$work/err")"
for f in "${probes[@]}" "$work/escaped-$$"; do
  [ ! -e "$f" ] || fail "a guest write reached the host: $f"
done
expect_eq "the same run's write to the project" kept "$(cat "$proj/kept.txt")"

# Device nodes cannot be made and ownership cannot be given away in a tree
# (QEMU runs without CAP_MKNOD and CAP_CHOWN: a root kestrel included).
"$KESTREL" run --keep never -- /bin/sh -c '
  mknod null-dev c 1 3 2>/dev/null && echo mknod-worked
  echo x >given; chown 12345:12345 given 2>/dev/null; true' >"$work/out" 2>"$work/err" ||
  fail "device run failed: $(cat "$work/err")"
[ ! -e null-dev ] || fail "a device node was created on the host: $(ls -l null-dev)"
[ ! -s "$work/out" ] || fail "the guest saw its mknod succeed: $(cat "$work/out")"
expect_eq "owner after a guest chown" "$(id -u):$(id -g)" "$(stat -c %u:%g given)"

# Pages written through a shared mapping are on the host when the run ends.
if command -v python3 >/dev/null; then
  head -c 4096 /dev/zero >mapped
  "$KESTREL" run --keep never -- python3 -c '
import mmap, os
fd = os.open("mapped", os.O_RDWR)
m = mmap.mmap(fd, 4096)
m[0:6] = b"mapped"
os._exit(0)' 2>"$work/err" || fail "mmap run failed: $(cat "$work/err")"
  expect_eq "mmap-written bytes" mapped "$(head -c 6 mapped)"
fi

# The program at its own path: $0, /proc/self/exe and a fixture beside it.
cat >"$work/fixture.c" <<'C'
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(void) {
  char exe[4096] = {0}, path[4200];
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) < 0) return 2;
  snprintf(path, sizeof path, "%s/fixture.txt", dirname(strdup(exe)));
  FILE* f = fopen(path, "r");
  char line[64] = {0};
  if (!f || !fgets(line, sizeof line, f)) return 3;
  printf("%s %s", exe, line);
  return 0;
}
C
if command -v cc >/dev/null; then
  cc -o "$proj/bin/fixture" "$work/fixture.c"
  echo here >"$proj/bin/fixture.txt"
  out=$("$KESTREL" run --keep never -- ../bin/fixture 2>"$work/err") || fail "fixture run failed: $(cat "$work/err")"
  expect_eq "/proc/self/exe and the fixture beside it" "$proj/bin/fixture here" "$out"
fi
printf '#!/bin/sh\necho "$0"\n' >"$proj/bin/script"
chmod +x "$proj/bin/script"
expect_eq "\$0" "$proj/bin/script" "$("$KESTREL" run --keep never -- "$proj/bin/script" 2>/dev/null)"

# A copy of dash outside every tree, as $0, is unchanged by `echo x >> $0`
# (the write lands in the guest's throw-away layer), and also when the guest
# mounts the host root's 9p device itself, read-write: QEMU exports it with
# readonly=on. The same holds for the unused devices.
victim=/usr/local/bin/kt-outputs-dash-$$
probes+=("$victim")
cp /bin/dash "$victim"
sum=$(sha256sum <"$victim")
# (Not the program itself: a running program's file is busy, ETXTBSY.)
"$KESTREL" run --keep never -- /bin/sh -c 'echo x >>"$0"' "$victim" 2>"$work/err" ||
  fail "append run failed: $(cat "$work/err")"
expect_eq "dash copy after echo x >> \$0" "$sum" "$(sha256sum <"$victim")"
# (The root's device is in use by the overlay's lower layer, which the agent
# mounted at /mnt/lower in its own root: remounted read-write there. With no
# tree, the second device is unused.)
"$KESTREL" run --keep never --write-through none -- /bin/sh -c "
  lower=/proc/1/root/mnt/lower
  mount -o remount,rw \$lower || exit 1
  echo x >>\$lower$victim && echo wrote-root
  mkdir -p /mnt/u
  mount -t 9p -o trans=virtio,version=9p2000.L share0 /mnt/u || exit 1
  echo x >/mnt/u/f && echo wrote-unused
  true" >"$work/out" 2>"$work/err" || fail "remount run failed: $(cat "$work/err")"
[ ! -s "$work/out" ] || fail "the guest wrote through a read-only device: $(cat "$work/out")"
grep -q 'Read-only file system' "$work/err" || fail "unexpected error: $(cat "$work/err")"
expect_eq "dash copy after a write through a remounted root" "$sum" "$(sha256sum <"$victim")"

# Strict isolation: with write_through = none nothing reaches the host;
# kestrel.toml adds trees (relative to its directory).
rm -f out.txt
"$KESTREL" run --keep never --write-through none -- /bin/sh -c 'echo x >out.txt' 2>"$work/err" ||
  fail "strict run failed: $(cat "$work/err")"
[ ! -e out.txt ] || fail "--write-through none let a write through"
mkdir "$work/extra"
printf 'write_through = ["auto", "../extra"]\n' >"$proj/kestrel.toml"
"$KESTREL" run --keep never -- /bin/sh -c "echo x >'$work/extra/f' && echo y >out.txt" 2>"$work/err" ||
  fail "run with extra tree failed: $(cat "$work/err")"
[ -e "$work/extra/f" ] && [ -e out.txt ] || fail "configured tree or project not written through"
"$KESTREL" config | grep -q "^#   writes reach the host in $work/extra: write_through setting" ||
  fail "kestrel config does not show the configured tree: $("$KESTREL" config)"
printf 'write_through = ["auto", "/etc"]\n' >"$proj/kestrel.toml"
set +e
"$KESTREL" run --keep never -- /bin/true 2>"$work/err"
status=$?
set -e
[ "$status" -ne 0 ] || fail "write_through = /etc was accepted"
grep -q "cannot write through /etc (.*kestrel.toml.*): a system directory" "$work/err" ||
  fail "no reason for /etc: $(cat "$work/err")"
[ -z "$(our_qemus)" ] || fail "a refused setting started QEMU"
[ -z "$(deployments)" ] || fail "runs left deployments: $(deployments)"
echo PASS

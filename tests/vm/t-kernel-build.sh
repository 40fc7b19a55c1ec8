# The lean kernel (`kestrel kernel build`, docs/kernels.md): built, or found
# in the cache, it boots with 2 CPUs under kestrel's usual flags, runs
# programs cold and warm, serves an exec and writes through a share, with no
# module in its initramfs.
#
# The compile takes minutes (about 5 on 2 cores), too long for every CI run:
# the test builds only with KESTREL_TEST_KERNEL_BUILD=1, and otherwise runs
# on a lean kernel already cached, or is skipped.
# kestrel-test-timeout: 3600
source "$(dirname "$0")/lib.sh"

lean_kernel() { "$KESTREL" kernel ls | awk -F'\t' '$3 ~ /^lean:/ { print $1; exit }'; }

if [ "${KESTREL_TEST_KERNEL_BUILD:-}" = 1 ]; then
  start=$(now_ms)
  "$KESTREL" kernel build >"$work/build.out" 2>"$work/build.err" || fail "kernel build failed: $(tail -20 "$work/build.err")"
  echo "kernel build: $(( ($(now_ms) - start) / 1000 )) s" >&2
  cat "$work/build.err" >&2
  # Each stage says what it did and how long it took, or the kernel was there.
  if ! grep -q 'is already built' "$work/build.err"; then
    for stage in '\[1/5\] download: .* in ' '\[2/5\] unpack: .* in ' '\[3/5\] configure: all .* options kept, in ' \
      '\[4/5\] compile: .* in ' '\[5/5\] install: vmlinux .* in ' 'built .*-lean-.* in '; do
      grep -q "kernel build: $stage" "$work/build.err" || fail "no line '$stage' in: $(cat "$work/build.err")"
    done
  fi
  built=$(cut -f1 "$work/build.out")
  [[ $built == *-lean-* ]] || fail "kernel build printed '$(cat "$work/build.out")'"
  # Built again: found in the cache at once.
  "$KESTREL" kernel build >/dev/null 2>"$work/again.err" || fail "second build failed: $(cat "$work/again.err")"
  grep -q 'is already built' "$work/again.err" || fail "second build did not find the first: $(cat "$work/again.err")"
fi
lean=$(lean_kernel)
[ -n "$lean" ] || skip "no lean kernel cached; set KESTREL_TEST_KERNEL_BUILD=1 to build one (minutes), or run: $KESTREL kernel build"
# It is listed after Debian's kernels, so the default stays Debian's.
first_source=$("$KESTREL" kernel ls | head -1 | cut -f3)
if [[ $first_source == lean:* ]] && "$KESTREL" kernel ls | grep -q $'\tdebian:'; then
  fail "a lean kernel is listed before Debian's: $("$KESTREL" kernel ls)"
fi

# Two CPUs under pci=noacpi (X86_MPPARSE), the lean kernel's own release.
out=$("$KESTREL" run --keep never --kernel lean --cpus 2 -- /bin/sh -c 'uname -r; nproc' 2>"$work/err") ||
  fail "run on the lean kernel failed: $(cat "$work/err")"
expect_eq "uname -r" "$lean" "$(sed -n 1p <<<"$out")"
expect_eq "nproc with --cpus 2" 2 "$(sed -n 2p <<<"$out")"

# Cold, then warm (a clone of the template the first run saved): both work.
expect_eq "cold run" cold-ok "$("$KESTREL" run -q --keep never --cold --kernel lean -- /bin/echo cold-ok)"
"$KESTREL" run -q --keep never --kernel lean -- /bin/true  # the template, if the first run did not save it
expect_eq "warm run" warm-ok "$("$KESTREL" run -q --keep never --kernel lean -- /bin/echo warm-ok)"

# No module anywhere: built in, so the kernel has no module support at all.
expect_eq "/proc/modules" absent \
  "$("$KESTREL" run -q --keep never --kernel lean -- /bin/sh -c '[ -e /proc/modules ] && echo present || echo absent')"
# What tests lean on: a pty, /dev/shm, a tmpfs with xattrs under the overlay, IPv6 loopback.
"$KESTREL" run -q --keep never --kernel lean -- /bin/sh -c '
  set -e
  mkdir /tmp/d && rm -r /tmp/d && mkdir /tmp/d   # an opaque directory in the overlay
  echo x >/dev/shm/x && rm /dev/shm/x
  [ -d /dev/pts ] && [ -c /dev/ptmx ]
  grep -q "^ *lo:" /proc/net/dev
  [ -e /proc/net/if_inet6 ]
  [ -e /proc/config.gz ]' 2>"$work/err" || fail "lean guest basics: $(cat "$work/err")"

# A share written through: the file is on the host when the run returns.
mkdir -p "$work/share"
"$KESTREL" run -q --keep never --kernel lean --share "$work/share:rw" -- \
  /bin/sh -c "echo through >$work/share/out.txt" 2>"$work/err" || fail "share run failed: $(cat "$work/err")"
expect_eq "share write" through "$(cat "$work/share/out.txt")"

# exec into a kept VM of the lean kernel.
start_kept_vm --kernel lean
expect_eq "exec" "exec-ok $lean" "$("$KESTREL" exec "$vm_name" -f "$vm_dir" -- /bin/sh -c 'echo exec-ok $(uname -r)')"
"$KESTREL" destroy -f "$vm_dir" >/dev/null

[ -z "$(deployments)" ] || fail "deployments left: $(deployments)"
echo PASS

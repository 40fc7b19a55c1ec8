# A kernel that differs from Debian's standard one: Debian's cloud kernel
# (linux-image-cloud-amd64) has no 9p and no CONFIG_X86_MPPARSE. kestrel
# reads its config beside the image, refuses it in one message that names
# what it lacks and what to do, and `kestrel doctor --kernel` says the same
# without booting it. Needs apt and a reachable Debian mirror (else skipped).
# kestrel-test-timeout: 600
# kestrel-test-labels: any-kernel
source "$(dirname "$0")/lib.sh"
use_own_cache

package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
  sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -n 1)
[ -n "$package" ] || skip "apt knows no linux-image-cloud-amd64"
(cd "$work" && apt-get download "$package" >/dev/null 2>&1) || skip "cannot download $package"
dpkg-deb -x "$work"/"$package"_*.deb "$work/cloud"
image=$(echo "$work"/cloud/boot/vmlinuz-*)
modules=$(echo "$work"/cloud/lib/modules/*)
grep -q '^# CONFIG_X86_MPPARSE is not set' "$work"/cloud/boot/config-* || skip "$package has CONFIG_X86_MPPARSE now"

set +e
"$KESTREL" run --kernel "$image" --kernel-modules "$modules" -- true >"$work/out" 2>"$work/err"
status=$?
set -e
expect_eq "status" 125 "$status"
# One line, the last (after the VM's start line).
expect_eq "error lines" 1 "$(grep -c '^kestrel: error:' "$work/err")"
tail -n 1 "$work/err" | grep -q '^kestrel: error:' || fail "more after the error: $(cat "$work/err")"
grep -qF "kestrel: error: kernel $image lacks what kestrel needs: 9p file sharing (CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS, each =y or =m with its modules in the modules dir; $work/cloud/boot/config-" "$work/err" ||
  fail "not the explanation: $(cat "$work/err")"
grep -q "Debian's linux-image-amd64 has them.*kestrel kernel build" "$work/err" || fail "no fix: $(cat "$work/err")"
[ -z "$(deployments)" ] || fail "a refused run left a deployment: $(deployments)"

# Without its config beside it: the modules tell (the module plan fails, the
# message says which feature).
mkdir "$work/bare" && cp "$image" "$work/bare/"
set +e
"$KESTREL" run --kernel "$work/bare/$(basename "$image")" --kernel-modules "$modules" -- true 2>"$work/err"
status=$?
set -e
expect_eq "status without config" 125 "$status"
grep -qF "lacks what kestrel needs: 9p file sharing" "$work/err" || fail "not explained: $(cat "$work/err")"
grep -qF "the modules in $modules: no 9pnet, 9pnet_virtio or 9p module" "$work/err" || fail "no source: $(cat "$work/err")"

# doctor: the options, the fix, the adaptation; exit status 1.
set +e
"$KESTREL" doctor --kernel "$image" --kernel-modules "$modules" >"$work/out" 2>&1
status=$?
set -e
expect_eq "doctor status" 1 "$status"
grep -q "^ok    kconfig  $work/cloud/boot/config-" "$work/out" || fail "no config source: $(cat "$work/out")"
grep -q '^FAIL  9p       9p file sharing: .*CONFIG_NET_9P, CONFIG_NET_9P_VIRTIO and CONFIG_9P_FS are not set' "$work/out" ||
  fail "9p not named: $(cat "$work/out")"
grep -A1 '^FAIL  9p' "$work/out" | grep -q 'fix: .*kestrel kernel build' || fail "no fix: $(cat "$work/out")"
grep -q '^ok    console  ' "$work/out" || fail "console: $(cat "$work/out")"
grep -q '^ok    apic     CONFIG_X86_MPPARSE is not set: kestrel boots it without pci=noacpi' "$work/out" ||
  fail "no MPPARSE adaptation: $(cat "$work/out")"

# The cloud kernel with the missing modules added (9pnet, 9pnet_virtio and 9p
# built from Debian's linux-source against the kernel's own headers, its
# config left as it is): kestrel takes the modules in the directory, and
# since the kernel lacks CONFIG_X86_MPPARSE boots it without pci=noacpi, so
# --cpus 2 gives two CPUs. Skipped (with a note) where the packages or a
# compiler are not to be had.
release=${package#linux-image-}
abi=${release%-cloud-amd64}
series=$(echo "$release" | cut -d. -f1,2)
build_9p_modules() {
  local dir=$work/kbuild v
  command -v make >/dev/null && command -v gcc-12 >/dev/null || return 1
  # The source must be the kernel's own version, or the modules would not load.
  v=$(apt-cache show --no-all-versions "$package" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
  [ "$v" = "$(apt-cache show --no-all-versions "linux-source-$series" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)" ] ||
    return 1
  mkdir "$dir"
  (cd "$dir" && apt-get download "linux-headers-$release" "linux-headers-$abi-common" "linux-kbuild-$series" \
    "linux-source-$series") >/dev/null 2>&1 || return 1
  for deb in "$dir"/*.deb; do dpkg-deb -x "$deb" "$dir/root"; done
  local headers=$dir/root/usr/src/linux-headers-$release
  sed -i "s|/usr/src/|$dir/root/usr/src/|" "$headers/Makefile"
  tar -C "$dir" -xf "$dir/root/usr/src/linux-source-$series.tar.xz" \
    "linux-source-$series/net/9p" "linux-source-$series/fs/9p" || return 1
  local src=$dir/linux-source-$series
  make -C "$headers" M="$src/net/9p" CONFIG_NET_9P=m CONFIG_NET_9P_VIRTIO=m -j"$(nproc)" modules >"$dir/log" 2>&1 &&
    make -C "$headers" M="$src/fs/9p" CONFIG_9P_FS=m KBUILD_EXTRA_SYMBOLS="$src/net/9p/Module.symvers" \
      -j"$(nproc)" modules >>"$dir/log" 2>&1 || { echo "module build failed: $(tail -5 "$dir/log")" >&2; return 1; }
  mkdir -p "$modules/kernel/net/9p" "$modules/kernel/fs/9p"
  cp "$src/net/9p/9pnet.ko" "$src/net/9p/9pnet_virtio.ko" "$modules/kernel/net/9p/"
  cp "$src/fs/9p/9p.ko" "$modules/kernel/fs/9p/"
}
if build_9p_modules; then
  "$KESTREL" doctor --kernel "$image" --kernel-modules "$modules" >"$work/out" 2>&1 ||
    fail "doctor with the modules added: $(cat "$work/out")"
  grep -q '^ok    9p       9p file sharing: CONFIG_NET_9P (not set, but module 9pnet is there)' "$work/out" ||
    fail "added modules not seen: $(cat "$work/out")"
  for start in warm cold; do
    flag=; [ $start = cold ] && flag=--cold
    out=$("$KESTREL" run --keep never $flag --kernel "$image" --kernel-modules "$modules" --cpus 2 -- \
      sh -c 'nproc; cat /proc/cmdline' 2>"$work/err") || fail "$start run: $(cat "$work/err")"
    expect_eq "$start: CPUs of a kernel without MPPARSE" 2 "$(echo "$out" | head -n 1)"
    [[ $out != *pci=noacpi* ]] || fail "$start: pci=noacpi given: $out"
    expect_eq "$start: notices" 1 "$(grep -c 'lacks CONFIG_X86_MPPARSE: booting without pci=noacpi (which would disable its local APIC)' "$work/err")"
  done
  # What kestrel avoids: the same kernel with pci=noacpi has one CPU.
  out=$("$KESTREL" run --keep never --cold --append pci=noacpi --kernel "$image" --kernel-modules "$modules" \
    --cpus 2 -- nproc 2>"$work/err") || fail "run with pci=noacpi: $(cat "$work/err")"
  expect_eq "CPUs with pci=noacpi" 1 "$out"
else
  echo "note: could not build 9p modules for $package; its --cpus 2 check was not run" >&2
fi

# The lean kernel (`kestrel kernel build`), when one is cached and lacks
# CONFIG_X86_MPPARSE too.
if "$KESTREL" doctor --kernel lean 2>/dev/null | grep -q '^ok    apic     CONFIG_X86_MPPARSE is not set'; then
  out=$("$KESTREL" run --keep never --kernel lean --cpus 2 -- nproc 2>"$work/err") || fail "lean run: $(cat "$work/err")"
  expect_eq "CPUs of the lean kernel" 2 "$out"
fi
echo PASS

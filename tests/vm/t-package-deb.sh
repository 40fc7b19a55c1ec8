# The Debian package built by CPack installs on a clean system (a fresh
# mmdebstrap tree of this host's release) and `kestrel run` works there from
# the installed files alone. Needs root (for the chroot) and the Debian mirror.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "the clean-system check runs mmdebstrap and chroot as root"
command -v mmdebstrap >/dev/null || skip "mmdebstrap is not installed (sudo apt-get install mmdebstrap)"

(cd "$work" && cpack -G DEB --config "$KESTREL_BUILD_DIR/CPackConfig.cmake" -B "$work/pkg") >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(echo "$work"/pkg/kestrel_*.deb)
[ -f "$deb" ] || fail "no .deb in $work/pkg"

# This host's release and mirror (the package's library versions are this release's).
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\).*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
# The guest kernel comes from the host's cache (`kestrel kernel fetch` would
# download the same files again): the one the tests run on, selected there
# as here (KESTREL_KERNEL=lean: the lean kernel).
kernel=$(guest_kernel)
kernel_dir=$(guest_kernel_dir)
[ -n "$kernel_dir" ] || fail "guest kernel $kernel is not in the cache: $("$KESTREL" kernel ls)"
in_root="chroot \"\$1\" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root $(kernel_env)"

mmdebstrap --variant=apt \
  --customize-hook="copy-in $deb /tmp" \
  --customize-hook="chroot \"\$1\" apt-get install -y --no-install-recommends /tmp/$(basename "$deb")" \
  --customize-hook="mkdir -p \"\$1/root/.cache/kestrel/kernels\" && cp -a $kernel_dir \"\$1/root/.cache/kestrel/kernels/\"" \
  --customize-hook="$in_root kestrel doctor" \
  --customize-hook="$in_root kestrel run -- /bin/true" \
  --customize-hook="$in_root kestrel run -q -- /bin/sh -c 'echo \"in VM \$(hostname) on kernel \$(uname -r)\"' >\"\$1/tmp/out\"" \
  --customize-hook="copy-out /tmp/out $work" \
  "$suite" "$work/root" "$mirror" </dev/null >"$work/mmdebstrap.log" 2>&1 ||
  { tail -n 40 "$work/mmdebstrap.log"; fail "installing or running the package on a clean system failed"; }
grep -q "^ok    guest    agent /usr/libexec/kestrel/kestrel-agent," "$work/mmdebstrap.log" ||
  fail "the package's kestrel did not find its agent: $(grep -A20 'kestrel doctor' "$work/mmdebstrap.log")"
grep -q "^in VM sh-[0-9a-f]\{6\} on kernel $kernel\$" "$work/out" ||
  fail "no output from the VM: $(cat "$work/out")"
rm -rf "$work/root"
echo PASS

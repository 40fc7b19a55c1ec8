# Images without root (docs/images.md): after the one-time setup `kestrel
# doctor` prints, nobody builds an image (mmdebstrap's unshare mode, the file
# system made under fakeroot: owners and setuid bits right), runs a program
# on it with its service started, and removes it.
# kestrel-test-timeout: 900
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" -eq 0 ] || skip "run as root to test an unprivileged user (it switches to nobody)"
command -v setpriv >/dev/null || skip "no setpriv"
command -v newuidmap >/dev/null || skip "no newuidmap (package uidmap; ./dev setup installs it)"
command -v fakeroot >/dev/null || skip "no fakeroot"
chmod 755 "$work"
cache=$(guest_kernel_dir)  # the tests' kernel, selected there as here (kernel_env)
mkdir -p "$work/home/.cache/kestrel/kernels" "$work/home/proj/.git" "$work/home/proj/images"
cp -a "$cache" "$work/home/.cache/kestrel/kernels/"
echo "from the host" >"$work/home/proj/images/app.conf"
cat >"$work/home/proj/images/tiny.toml" <<'RECIPE'
size = "512M"
run = ["echo provisioned >/etc/provisioned"]
[files]
"app.conf" = "/etc/kestrel-test/app.conf"
[[service]]
name = "stamp"
command = "date +%s >/run/stamp-started"
RECIPE
chown -R nobody:nogroup "$work/home"
as_nobody() {
  setpriv --reuid=nobody --regid=nogroup --clear-groups --reset-env \
    env HOME="$work/home" PATH=/usr/bin:/bin KESTREL_RUNTIME_DIR="$work/home/rt" $(kernel_env) "$@"
}

# The one-time setup, as doctor prints it (subordinate ids for nobody).
cp /etc/subuid "$work/subuid.saved" 2>/dev/null || : >"$work/subuid.saved"
cp /etc/subgid "$work/subgid.saved" 2>/dev/null || : >"$work/subgid.saved"
trap 'status=$?; cp "$work/subuid.saved" /etc/subuid; cp "$work/subgid.saved" /etc/subgid; (exit $status); finish' EXIT
as_nobody "$KESTREL" doctor >"$work/doctor" 2>&1 || true
if grep -q '^warn  images' "$work/doctor"; then
  fix=$(grep -A1 '^warn  images' "$work/doctor" | sed -n 's/^ *fix: //p')
  [[ $fix == *"usermod --add-subuids"* ]] || fail "doctor's fix is not the subordinate ids: $(cat "$work/doctor")"
  usermod=$(sed 's/.*\(usermod --add-subuids [^&]*\).*/\1/' <<<"$fix")
  $usermod
  as_nobody "$KESTREL" doctor >"$work/doctor2" 2>&1 || true
  grep -q '^ok    images' "$work/doctor2" || fail "doctor still unhappy after its fix: $(cat "$work/doctor2")"
fi

cd "$work/home/proj"
# Two builds of one recipe at once build it once: the other waits for it.
as_nobody "$KESTREL" image build images/tiny.toml >"$work/build.1" 2>&1 &
as_nobody "$KESTREL" image build images/tiny.toml >"$work/build.2" 2>&1 &
for job in $(jobs -p); do wait "$job" || fail "a build as nobody failed: $(cat "$work"/build.*)"; done
cat "$work/build.1" "$work/build.2" >"$work/build"
grep -q "resolve: mmdebstrap .* (unshare mode)" "$work/build" || fail "not the unshare mode: $(cat "$work/build")"
expect_eq "builds" 1 "$(grep -c '^kestrel: image tiny ([0-9a-f]*) built in' "$work/build")"
expect_eq "builds that waited" 1 "$(grep -c '^kestrel: image tiny: waiting for another kestrel.* building it' "$work/build")"
id=$(sed -n 's/^kestrel: image tiny (\([0-9a-f]*\)) built in.*/\1/p' "$work/build")
# --refresh builds again; with no newer package the image stays.
as_nobody "$KESTREL" image build --refresh images/tiny.toml >"$work/refresh" 2>&1 || fail "refresh failed: $(cat "$work/refresh")"
grep -q "no package changed; $id stays current" "$work/refresh" || fail "odd refresh: $(cat "$work/refresh")"
out=$(as_nobody "$KESTREL" run -q --image images/tiny.toml --keep never -- /bin/sh -c \
  'cat /etc/provisioned /etc/kestrel-test/app.conf; stat -c "%U %A" /usr/bin/su /etc/kestrel-test/app.conf; test -s /run/stamp-started && echo service-ran; echo >from-vm.txt') ||
  fail "run as nobody failed: $out"
expect_eq "the image as nobody built it" "provisioned
from the host
root -rwsr-xr-x
root -rw-r--r--
service-ran" "$out"
expect_eq "owner of what the run wrote" nobody "$(stat -c %U from-vm.txt)"
as_nobody "$KESTREL" cache ls >"$work/cache-ls"
grep -q "^images (1, .* MiB; " "$work/cache-ls" && grep -q "^  tiny  *$id  " "$work/cache-ls" ||
  fail "cache ls does not show the image: $(cat "$work/cache-ls")"
as_nobody "$KESTREL" image rm tiny >"$work/rm" 2>&1 || fail "image rm failed: $(cat "$work/rm")"
[ -z "$(ls "$work/home/.cache/kestrel/images" | grep -v -e refs -e locks || true)" ] ||
  fail "images left: $(ls -la "$work/home/.cache/kestrel/images")"
[ -z "$(pgrep -u nobody -f qemu-system || true)" ] || fail "nobody's QEMU left running"
echo PASS

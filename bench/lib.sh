# Shared helpers of the benchmarks: timing, medians, a raw QEMU baseline.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KESTREL_BUILD_DIR=${KESTREL_BUILD_DIR:-$here/../build}
KESTREL=${KESTREL:-$KESTREL_BUILD_DIR/src/kestrel}
ROUNDS=${ROUNDS:-5}

now() { date +%s.%N; }
# elapsed START -> seconds with 3 decimals
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# Three decimals: a ratio read against a target must not round its way in.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

# The newest cached kernel's directory (vmlinux, modules/).
kernel_dir() { dirname "$("$KESTREL" kernel ls | head -1 | cut -f2)"; }

# Builds the initramfs a person would write by hand for the same job: busybox
# as init, the virtio/9p modules loaded with insmod, the host's root mounted
# over 9p, the command run there, power off. Prints its path. A second
# argument takes the modules from that kernel directory instead of the newest
# cached kernel's (a kernel without modules: none are loaded).
make_raw_initramfs() {
  local out=$1 kdir=${2:-$(kernel_dir)}
  local root=$out.d
  rm -rf "$root"
  mkdir -p "$root"/{bin,dev,proc,sys,mnt,m}
  cp /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console \
    netfs fscache 9pnet 9pnet_virtio 9p; do
    cp "$kdir/modules/$m.ko" "$root/m/" 2>/dev/null || true
  done
  cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console \
  netfs fscache 9pnet 9pnet_virtio 9p; do
  [ -f /m/$m.ko ] && /bin/busybox insmod /m/$m.ko
done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro root /mnt
/bin/busybox chroot /mnt /bin/true && echo RAW-DONE
/bin/busybox poweroff -f
INIT
  chmod +x "$root/init"
  (cd "$root" && find . | cpio -o -H newc --quiet) >"$out"
  rm -rf "$root"
}

# One raw cold boot to a finished command; prints seconds. A third argument
# boots that vmlinux instead of the newest cached kernel's.
raw_boot() {
  local cpio=$1 log=$2 vmlinux=${3:-$(kernel_dir)/vmlinux} start
  start=$(now)
  qemu-system-x86_64 -M pc -accel tcg -cpu max -m 512 -nodefaults -no-user-config -display none -no-reboot \
    -kernel "$vmlinux" -initrd "$cpio" -append "console=ttyS0 quiet panic=-1" \
    -serial "file:$log" \
    -fsdev local,id=root,path=/,readonly=on,security_model=none,multidevs=remap \
    -device virtio-9p-pci,fsdev=root,mount_tag=root </dev/null
  elapsed "$start"
  grep -q RAW-DONE "$log" || { echo "raw boot did not finish its command; see $log" >&2; return 1; }
}

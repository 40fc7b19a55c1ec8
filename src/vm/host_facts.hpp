// What kestrel reads about its host, from one place: the /dev/kvm device and
// whether we may open it, the KVM modules (kvm, kvm_intel, kvm_amd, kvm_pvm)
// and their nested setting, the CPU's vendor and flags, the host kernel's
// release. Everything that depends on the host (the accelerator, doctor's
// advice, the KVM verdict's key) takes a HostFacts, so every host variant is
// a test on every machine: read_host_facts() of a fake root (a directory
// with dev/kvm, sys/module/..., proc/cpuinfo) is what a test points it at,
// and KESTREL_HOST_ROOT does the same for a whole kestrel command (a test
// hook: docs/config.md). QEMU's own abilities are asked of the QEMU binary
// (vm/qemu.hpp), which tests replace with KESTREL_QEMU.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kestrel::vm {

struct HostFacts {
  // /dev/kvm opened read-write: what happened.
  enum class DevKvm {
    kMissing,   // no such file (no KVM module, or one that makes no device: PVM hosts seen so)
    kNoAccess,  // there, but not ours to open (EACCES/EPERM: the kvm group)
    kBroken,    // there, but opening failed otherwise (ENXIO, ENODEV: no driver behind it)
    kUsable,    // opened read-write
  };
  DevKvm dev_kvm = DevKvm::kMissing;
  std::string dev_kvm_error;  // strerror of the failed open, "" when usable

  bool kvm = false;        // /sys/module/kvm
  bool kvm_intel = false;  // /sys/module/kvm_intel
  bool kvm_amd = false;    // /sys/module/kvm_amd
  bool kvm_pvm = false;    // /sys/module/kvm_pvm: PVM, which boots only PVM guest kernels
  // kvm_intel's or kvm_amd's `nested` parameter (Y/1 or N/0), when loaded.
  std::optional<bool> nested;

  std::string cpu_vendor;       // /proc/cpuinfo vendor_id: GenuineIntel, AuthenticAMD; "" unknown
  bool cpu_vmx = false;         // Intel VT-x offered to this host
  bool cpu_svm = false;         // AMD-V offered to this host
  bool cpu_hypervisor = false;  // this host is itself a VM
  std::string host_release;     // proc/sys/kernel/osrelease (uname -r)
  std::string cpu_model;        // /proc/cpuinfo "model name" of the first CPU
  std::string cpu_flags;        // its "flags", as the kernel lists them

  // QEMU's accelerators ("tcg", "kvm"), once asked (vm::qemu_accelerators):
  // not read from the root, and asked only where KVM is in question.
  std::optional<std::vector<std::string>> qemu_accels;

  bool dev_kvm_usable() const { return dev_kvm == DevKvm::kUsable; }
  // kvm_intel or kvm_amd: KVM that boots a standard kernel.
  bool hardware_kvm() const { return kvm_intel || kvm_amd; }
  // PVM's module, and no hardware KVM beside it.
  bool pvm_only() const { return kvm_pvm && !hardware_kvm(); }
};

// "/", or the directory KESTREL_HOST_ROOT names (tests: a fake host).
std::filesystem::path host_root();

// Reads the facts under `root` (files absent there read as absent, never an
// error: a host without /proc/cpuinfo is a host with an unknown CPU).
HostFacts read_host_facts(const std::filesystem::path& root = host_root());

// What a warm-start snapshot depends on beyond QEMU and its command line:
// the host's CPU (vendor, model, flags: what KVM hands a guest) and kernel
// release. A template made under one is never restored under another
// (host/template_store.hpp), e.g. on another node of a cluster whose cache
// is shared. One line: "GenuineIntel|Xeon ...|fpu vme ...|6.1.0-18-amd64".
std::string snapshot_host(const HostFacts& facts);

// One line for `kestrel doctor`: "AMD (AuthenticAMD), svm, modules kvm kvm_pvm,
// /dev/kvm missing".
std::string describe_host(const HostFacts& facts);

}  // namespace kestrel::vm

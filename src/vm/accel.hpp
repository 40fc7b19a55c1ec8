// Choosing the accelerator: KVM only where it can really boot a standard
// kernel, else TCG. /dev/kvm alone proves nothing: on PVM hosts
// (kvm_pvm) it opens fine and a normal guest hangs forever, and some PVM
// hosts load kvm_pvm with no /dev/kvm at all. The host's side of the
// decision comes from vm/host_facts.hpp (a fake host in tests).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vm/host_facts.hpp"

namespace kestrel::vm {

enum class Accel { kKvm, kTcg };
const char* accel_name(Accel a);

struct AccelDecision {
  Accel accel = Accel::kTcg;
  bool automatic = true;  // chosen by kestrel (may fall back), not forced by the user
  std::string reason;     // one line for `kestrel doctor` and error messages
};

// `requested` is the accel setting: "kvm", "tcg", "auto" or empty (auto).
// `kvm_failed_before`: a remembered "KVM did not boot here" for this
// host/QEMU/kernel (remembered_kvm_failure). Throws Error for another
// value, and for "kvm" where /dev/kvm cannot be opened (saying why).
AccelDecision decide_accel(std::string_view requested, const HostFacts& facts,
                           const std::optional<std::string>& kvm_failed_before = std::nullopt);

// What would give this host KVM, for `kestrel doctor`'s fix line when the
// decision is TCG: a command, or "none on this host: ..." saying why not.
std::string kvm_advice(const HostFacts& facts);

// Why a KVM boot may have failed on this host, for the boot-timeout message.
std::string kvm_failure_hint(const HostFacts& facts);

// The key a KVM verdict is remembered under: the host kernel, QEMU's
// version, the guest kernel.
std::string kvm_verdict_key(const HostFacts& facts, std::string_view qemu_version, std::string_view guest_release);

// Remembers that KVM failed to boot for `key`, so later runs go straight to TCG.
void remember_kvm_failure(const std::string& key, const std::string& why);
// What was remembered for `key`, if anything.
std::optional<std::string> remembered_kvm_failure(const std::string& key);

// Every remembered KVM failure ("KEY: WHY"), and the file that holds them,
// for `kestrel doctor`.
std::vector<std::string> remembered_kvm_failures();
std::filesystem::path kvm_verdict_file();

}  // namespace kestrel::vm

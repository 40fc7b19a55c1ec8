// Choosing the accelerator: KVM only where it can really boot a standard
// kernel, else TCG. /dev/kvm alone proves nothing: on PVM hosts
// (kvm_pvm) it opens fine and a normal guest hangs forever.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kestrel::vm {

enum class Accel { kKvm, kTcg };
const char* accel_name(Accel a);

// Facts about the host, gathered by probe_host() (or faked in tests).
struct HostFacts {
  bool dev_kvm_usable = false;  // /dev/kvm opens read-write
  bool kvm_intel = false;       // /sys/module/kvm_intel
  bool kvm_amd = false;         // /sys/module/kvm_amd
  bool kvm_pvm = false;         // /sys/module/kvm_pvm
  // A remembered "KVM did not boot here" for this host/QEMU/kernel, if any.
  std::optional<std::string> kvm_failed_before;
};

HostFacts probe_host(const std::string& verdict_key);

struct AccelDecision {
  Accel accel = Accel::kTcg;
  bool automatic = true;  // chosen by kestrel (may fall back), not forced by the user
  std::string reason;     // one line for `kestrel doctor` and error messages
};

// `requested` is KESTREL_ACCEL's value: "kvm", "tcg", "auto" or empty (auto).
// Throws Error for any other value.
AccelDecision decide_accel(std::string_view requested, const HostFacts& facts);

// Why a KVM boot may have failed on this host, for the boot-timeout message.
std::string kvm_failure_hint(const HostFacts& facts);

// Remembers that KVM failed to boot for `key` (host kernel, QEMU, guest
// kernel), so later runs go straight to TCG.
void remember_kvm_failure(const std::string& key, const std::string& why);

// Every remembered KVM failure ("KEY: WHY"), and the file that holds them,
// for `kestrel doctor`.
std::vector<std::string> remembered_kvm_failures();
std::filesystem::path kvm_verdict_file();

}  // namespace kestrel::vm

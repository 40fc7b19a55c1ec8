#include "vm/accel.hpp"

#include <algorithm>

#include "assets/cache.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace kestrel::vm {

const char* accel_name(Accel a) { return a == Accel::kKvm ? "kvm" : "tcg"; }

namespace {

using DevKvm = HostFacts::DevKvm;

fs::path verdict_file() { return assets::cache_dir() / "accel-verdicts.json"; }

nlohmann::json load_verdicts() {
  auto text = read_file_if_exists(verdict_file());
  if (!text) return nlohmann::json::object();
  auto j = parse_json(*text);
  return j.is_object() ? j : nlohmann::json::object();
}

constexpr std::string_view kTcg = "TCG (software emulation): ";

// "QEMU was built without KVM (...)" once QEMU was asked and said so, else "".
std::string qemu_lacks_kvm(const HostFacts& f) {
  if (!f.qemu_accels || std::find(f.qemu_accels->begin(), f.qemu_accels->end(), "kvm") != f.qemu_accels->end())
    return "";
  return "QEMU was built without KVM (its accelerators: " +
         (f.qemu_accels->empty() ? std::string("none") : join(*f.qemu_accels, " ")) + ")";
}

// Why /dev/kvm is no use, as the rest of "TCG (software emulation): ...".
std::string why_not_kvm(const HostFacts& f) {
  switch (f.dev_kvm) {
    case DevKvm::kMissing:
      if (f.pvm_only())
        return "there is no /dev/kvm (kvm_pvm is loaded: PVM, which boots only PVM-enabled guest kernels "
               "even where it makes one)";
      if (f.hardware_kvm())
        return std::string("there is no /dev/kvm, though ") + (f.kvm_intel ? "kvm_intel" : "kvm_amd") + " is loaded";
      return "there is no /dev/kvm (no KVM module is loaded)";
    case DevKvm::kNoAccess:
      return "/dev/kvm is not accessible to you (" + f.dev_kvm_error + ")";
    case DevKvm::kBroken:
      return "/dev/kvm exists but does not open (" + f.dev_kvm_error + ")";
    case DevKvm::kUsable:
      break;
  }
  if (f.pvm_only())
    return "/dev/kvm is provided by kvm_pvm (PVM), which boots only PVM-enabled guest kernels; a standard "
           "kernel hangs under it";
  if (!f.hardware_kvm()) return "/dev/kvm exists but neither kvm_intel nor kvm_amd is loaded";
  return qemu_lacks_kvm(f);
}

}  // namespace

AccelDecision decide_accel(std::string_view requested, const HostFacts& f,
                           const std::optional<std::string>& kvm_failed_before) {
  if (requested == "tcg") return {Accel::kTcg, false, std::string(kTcg) + "KESTREL_ACCEL=tcg"};
  if (requested == "kvm") {
    if (!f.dev_kvm_usable()) {
      if (f.dev_kvm == DevKvm::kNoAccess)
        fail("KESTREL_ACCEL=kvm, but /dev/kvm cannot be opened read-write ({}): add yourself to the kvm group",
             f.dev_kvm_error);
      fail("KESTREL_ACCEL=kvm, but {}", why_not_kvm(f));
    }
    if (std::string lacks = qemu_lacks_kvm(f); !lacks.empty()) fail("KESTREL_ACCEL=kvm, but {}", lacks);
    return {Accel::kKvm, false, "KVM: KESTREL_ACCEL=kvm"};
  }
  if (!requested.empty() && requested != "auto") fail("KESTREL_ACCEL={}: expected kvm, tcg or auto", requested);

  if (std::string why = why_not_kvm(f); !why.empty()) return {Accel::kTcg, true, std::string(kTcg) + why};
  if (kvm_failed_before)
    return {Accel::kTcg, true, std::string(kTcg) + "KVM failed to boot here before (" + *kvm_failed_before + ")"};
  return {Accel::kKvm, true, std::string("KVM (") + (f.kvm_intel ? "kvm_intel" : "kvm_amd") + ")"};
}

std::string kvm_advice(const HostFacts& f) {
  if (f.pvm_only())
    return "none on this host: KVM needs a host with kvm_intel or kvm_amd (bare metal or nested "
           "virtualization); set accel = \"tcg\" to make the choice explicit";
  if (f.dev_kvm == DevKvm::kNoAccess) return "sudo usermod -aG kvm $USER  (then log in again)";
  if (!qemu_lacks_kvm(f).empty())
    return "sudo apt-get install qemu-system-x86  (Debian's QEMU has KVM), or point KESTREL_QEMU at one that has";
  if (f.hardware_kvm())  // loaded, but no /dev/kvm that opens
    return std::string("look for KVM's complaint in `sudo dmesg | grep -i kvm`, then `sudo modprobe -r ") +
           (f.kvm_intel ? "kvm_intel" : "kvm_amd") + " && sudo modprobe " + (f.kvm_intel ? "kvm_intel" : "kvm_amd") +
           "`";
  if (f.cpu_vmx) return "sudo modprobe kvm_intel";
  if (f.cpu_svm) return "sudo modprobe kvm_amd";
  if (f.cpu_hypervisor)
    return "none on this host: it is a VM whose CPU offers no VT-x/AMD-V; turn on nested virtualization "
           "on its host";
  return "none on this host: use a machine (or VM with nested virtualization) with VT-x/AMD-V";
}

std::string kvm_failure_hint(const HostFacts& f) {
  if (f.pvm_only())
    return "this host's KVM is kvm_pvm (PVM), which cannot boot a standard guest kernel; use KESTREL_ACCEL=tcg "
           "or auto";
  if (f.cpu_hypervisor) return "KVM may be unusable on this host (a VM: nested virtualization?); try KESTREL_ACCEL=tcg";
  return "KVM may be unusable on this host; try KESTREL_ACCEL=tcg";
}

std::string kvm_verdict_key(const HostFacts& f, std::string_view qemu_version, std::string_view guest_release) {
  return fmt::format("host={} qemu={} guest={}", f.host_release, qemu_version, guest_release);
}

void remember_kvm_failure(const std::string& key, const std::string& why) {
  auto verdicts = load_verdicts();
  verdicts[key] = why;
  write_file_atomic(verdict_file(), dump_json(verdicts, 2) + "\n");
}

std::optional<std::string> remembered_kvm_failure(const std::string& key) {
  auto verdicts = load_verdicts();
  if (verdicts.contains(key) && verdicts[key].is_string()) return verdicts[key].get<std::string>();
  return std::nullopt;
}

std::vector<std::string> remembered_kvm_failures() {
  std::vector<std::string> out;
  const nlohmann::json verdicts = load_verdicts();
  for (auto it = verdicts.begin(); it != verdicts.end(); ++it)
    if (it->is_string()) out.push_back(it.key() + ": " + it->get<std::string>());
  return out;
}

std::filesystem::path kvm_verdict_file() { return verdict_file(); }

}  // namespace kestrel::vm

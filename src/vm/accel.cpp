#include "vm/accel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "assets/cache.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"

namespace kestrel::vm {

const char* accel_name(Accel a) { return a == Accel::kKvm ? "kvm" : "tcg"; }

namespace {

fs::path verdict_file() { return assets::cache_dir() / "accel-verdicts.json"; }

nlohmann::json load_verdicts() {
  auto text = read_file_if_exists(verdict_file());
  if (!text) return nlohmann::json::object();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

}  // namespace

HostFacts probe_host(const std::string& verdict_key) {
  HostFacts f;
  UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  f.dev_kvm_usable = kvm.valid();
  f.kvm_intel = ::access("/sys/module/kvm_intel", F_OK) == 0;
  f.kvm_amd = ::access("/sys/module/kvm_amd", F_OK) == 0;
  f.kvm_pvm = ::access("/sys/module/kvm_pvm", F_OK) == 0;
  auto verdicts = load_verdicts();
  if (verdicts.contains(verdict_key) && verdicts[verdict_key].is_string())
    f.kvm_failed_before = verdicts[verdict_key].get<std::string>();
  return f;
}

AccelDecision decide_accel(std::string_view requested, const HostFacts& f) {
  if (requested == "tcg") return {Accel::kTcg, false, "TCG (software emulation): KESTREL_ACCEL=tcg"};
  if (requested == "kvm") {
    if (!f.dev_kvm_usable)
      fail(
          "KESTREL_ACCEL=kvm, but /dev/kvm cannot be opened read-write (missing, or no permission: "
          "add yourself to the kvm group)");
    return {Accel::kKvm, false, "KVM: KESTREL_ACCEL=kvm"};
  }
  if (!requested.empty() && requested != "auto") fail("KESTREL_ACCEL={}: expected kvm, tcg or auto", requested);

  if (!f.dev_kvm_usable) return {Accel::kTcg, true, "TCG (software emulation): /dev/kvm is missing or not accessible"};
  if (!f.kvm_intel && !f.kvm_amd) {
    if (f.kvm_pvm)
      return {Accel::kTcg, true,
              "TCG (software emulation): /dev/kvm is provided by kvm_pvm (PVM), which boots only "
              "PVM-enabled guest kernels; a standard kernel hangs under it"};
    return {Accel::kTcg, true, "TCG (software emulation): /dev/kvm exists but neither kvm_intel nor kvm_amd is loaded"};
  }
  if (f.kvm_failed_before)
    return {Accel::kTcg, true,
            "TCG (software emulation): KVM failed to boot here before (" + *f.kvm_failed_before + ")"};
  return {Accel::kKvm, true, std::string("KVM (") + (f.kvm_intel ? "kvm_intel" : "kvm_amd") + ")"};
}

std::string kvm_failure_hint(const HostFacts& f) {
  if (f.kvm_pvm && !f.kvm_intel && !f.kvm_amd)
    return "this host's /dev/kvm is provided by kvm_pvm (PVM), which cannot boot a standard guest "
           "kernel; use KESTREL_ACCEL=tcg or auto";
  return "KVM may be unusable on this host (nested virtualization?); try KESTREL_ACCEL=tcg";
}

void remember_kvm_failure(const std::string& key, const std::string& why) {
  auto verdicts = load_verdicts();
  verdicts[key] = why;
  write_file_atomic(verdict_file(), verdicts.dump(2) + "\n");
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

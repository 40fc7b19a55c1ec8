#include "vm/host_facts.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "util/strings.hpp"

namespace kestrel::vm {

namespace fs = std::filesystem;

namespace {

bool present(const fs::path& path) { return ::access(path.c_str(), F_OK) == 0; }

// "Y", "y", "1": a module's boolean parameter.
std::optional<bool> parameter(const fs::path& path) {
  auto text = read_small_file(path, 64);
  if (!text) return std::nullopt;
  std::string_view v = trim(*text);
  return v == "Y" || v == "y" || v == "1";
}

void read_cpuinfo(const fs::path& path, HostFacts& f) {
  auto text = read_small_file(path, 16 << 20);  // a few KiB per CPU
  if (!text) return;
  bool have_vendor = false, have_flags = false;
  for (const auto& line : split(*text, '\n')) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string_view key = trim(std::string_view(line).substr(0, colon));
    std::string_view value = trim(std::string_view(line).substr(colon + 1));
    if (key == "vendor_id" && !have_vendor) {
      f.cpu_vendor = std::string(value);
      have_vendor = true;
    } else if (key == "model name" && f.cpu_model.empty()) {
      f.cpu_model = std::string(value);
    } else if (key == "flags" && !have_flags) {
      f.cpu_flags = std::string(value);
      for (const auto& flag : split(value, ' ')) {
        if (flag == "vmx") f.cpu_vmx = true;
        if (flag == "svm") f.cpu_svm = true;
        if (flag == "hypervisor") f.cpu_hypervisor = true;
      }
      have_flags = true;
    }
    if (have_vendor && have_flags) return;  // the first CPU speaks for all
  }
}

}  // namespace

fs::path host_root() {
  const char* env = std::getenv("KESTREL_HOST_ROOT");
  return env && *env ? fs::path(env) : fs::path("/");
}

HostFacts read_host_facts(const fs::path& root) {
  HostFacts f;
  fs::path dev_kvm = root / "dev/kvm";
  UniqueFd kvm(::open(dev_kvm.c_str(), O_RDWR | O_CLOEXEC));
  if (kvm) {
    f.dev_kvm = HostFacts::DevKvm::kUsable;
  } else {
    int err = errno;
    f.dev_kvm_error = std::strerror(err);
    if (err == ENOENT || err == ENOTDIR)
      f.dev_kvm = HostFacts::DevKvm::kMissing;
    else if (err == EACCES || err == EPERM || err == EROFS)
      f.dev_kvm = HostFacts::DevKvm::kNoAccess;
    else
      f.dev_kvm = HostFacts::DevKvm::kBroken;
  }
  fs::path modules = root / "sys/module";
  f.kvm = present(modules / "kvm");
  f.kvm_intel = present(modules / "kvm_intel");
  f.kvm_amd = present(modules / "kvm_amd");
  f.kvm_pvm = present(modules / "kvm_pvm");
  if (f.kvm_intel) f.nested = parameter(modules / "kvm_intel/parameters/nested");
  if (!f.nested && f.kvm_amd) f.nested = parameter(modules / "kvm_amd/parameters/nested");
  read_cpuinfo(root / "proc/cpuinfo", f);
  if (auto release = read_small_file(root / "proc/sys/kernel/osrelease", 256))
    f.host_release = std::string(trim(*release));
  return f;
}

std::string snapshot_host(const HostFacts& f) {
  return f.cpu_vendor + "|" + f.cpu_model + "|" + f.cpu_flags + "|" + f.host_release;
}

std::string describe_host(const HostFacts& f) {
  std::string cpu = f.cpu_vendor == "GenuineIntel"   ? "Intel CPU"
                    : f.cpu_vendor == "AuthenticAMD" ? "AMD CPU"
                    : f.cpu_vendor.empty()           ? "unknown CPU"
                                                     : f.cpu_vendor + " CPU";
  if (f.cpu_vmx) cpu += " with VT-x";
  if (f.cpu_svm) cpu += " with AMD-V";
  if (f.cpu_hypervisor) cpu += ", itself a VM";
  std::string modules;
  for (auto [loaded, name] : {std::pair{f.kvm, "kvm"}, std::pair{f.kvm_intel, "kvm_intel"},
                              std::pair{f.kvm_amd, "kvm_amd"}, std::pair{f.kvm_pvm, "kvm_pvm"}})
    if (loaded) modules += std::string(modules.empty() ? "" : " ") + name;
  if (modules.empty()) modules = "none";
  if (f.nested) modules += *f.nested ? " (nested on)" : " (nested off)";
  std::string dev;
  switch (f.dev_kvm) {
    case HostFacts::DevKvm::kMissing:
      dev = "no /dev/kvm";
      break;
    case HostFacts::DevKvm::kNoAccess:
      dev = "/dev/kvm not ours to open (" + f.dev_kvm_error + ")";
      break;
    case HostFacts::DevKvm::kBroken:
      dev = "/dev/kvm does not open (" + f.dev_kvm_error + ")";
      break;
    case HostFacts::DevKvm::kUsable:
      dev = "/dev/kvm usable";
      break;
  }
  return cpu + "; KVM modules: " + modules + "; " + dev;
}

}  // namespace kestrel::vm

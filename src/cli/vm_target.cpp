#include "cli/vm_target.hpp"

#include "util/error.hpp"

namespace kestrel::cli {

VmTarget find_vm(const std::string& name, const std::string& dir) {
  deploy::Deployment dep = deploy::Deployment::open(dir);
  std::string names;
  for (const auto& vm : dep.state().vms) {
    if (vm.name != name) {
      names += (names.empty() ? "" : ", ") + vm.name;
      continue;
    }
    vm::VmPaths paths = dep.vm_paths(name);
    if (!deploy::is_vm_process(vm.pid, paths.dir))
      fail("VM {} in {} is not running (its QEMU process is gone); console log: {}", name, dep.dir().string(),
           paths.console_log().string());
    int pid = vm.pid;
    return VmTarget{std::move(dep), name, paths, pid};
  }
  fail("no VM named {} in {} (it has: {})", name, dep.dir().string(), names.empty() ? "none" : names);
}

}  // namespace kestrel::cli

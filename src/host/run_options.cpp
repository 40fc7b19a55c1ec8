#include "host/run_options.hpp"

#include <filesystem>

#include "util/allocation.hpp"

namespace kestrel::host {

assets::KernelSpec kernel_spec(const std::string& kernel, const std::string& modules) {
  assets::KernelSpec spec;
  if (!kernel.empty() && (kernel.find('/') != std::string::npos || std::filesystem::exists(kernel))) {
    spec.image = kernel;
    spec.modules_dir = modules;
  } else {
    spec.release = kernel;
  }
  return spec;
}

BootOptions boot_options(const config::Config& c) {
  BootOptions b;
  b.mem_mib = static_cast<uint32_t>(c.count("memory"));
  // In a Slurm task with little memory the default VM shrinks to fit it.
  if (c.entry("memory").origin.source == config::Source::kDefault)
    b.mem_mib = fit_vm_memory(b.mem_mib, current_allocation().mem_mib);
  b.cpus = static_cast<uint32_t>(c.count("cpus"));
  b.kernel = kernel_spec(c.text("kernel"), c.text("kernel_modules"));
  b.kernel_args = c.text("kernel_args");
  b.accel_request = c.text("accel");
  b.warm = c.flag("warm");
  b.user_network = c.text("network") == "user";
  return b;
}

}  // namespace kestrel::host

// The VM settings every command that boots VMs takes from the configuration
// (memory, CPUs, kernel and its arguments, accelerator, warm starts), in
// host::BootOptions.
#pragma once

#include "config/config.hpp"
#include "host/machine.hpp"

namespace kestrel::cli {

// A `kernel` value: a path (a file, or anything with a '/') or a release.
assets::KernelSpec kernel_spec(const std::string& kernel, const std::string& modules);

// BootOptions with the configuration's memory, cpus, kernel, kernel_args, accel and warm.
host::BootOptions boot_options(const config::Config& config);

}  // namespace kestrel::cli

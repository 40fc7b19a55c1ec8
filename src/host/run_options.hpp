// The VM settings every front that boots VMs (the `kestrel` command and the
// C++ API) takes from the configuration (memory, CPUs, kernel and its
// arguments, accelerator, warm starts, network), in host::BootOptions.
#pragma once

#include "config/config.hpp"
#include "host/machine.hpp"

namespace kestrel::host {

// A `kernel` value: a path (a file, or anything with a '/') or a release.
assets::KernelSpec kernel_spec(const std::string& kernel, const std::string& modules);

// BootOptions with the configuration's memory, cpus, kernel, kernel_args, accel and warm.
BootOptions boot_options(const config::Config& config);

}  // namespace kestrel::host

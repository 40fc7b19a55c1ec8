// The steps of Machine::boot (host/machine.cpp), shared with the warm path
// (host/warm_start.cpp): what a boot of one configuration needs, resolved
// once, and a cold boot with its KVM-to-TCG fallback.
#pragma once

#include <string>

#include "host/agent_client.hpp"
#include "host/machine.hpp"
#include "util/lockfile.hpp"
#include "util/process.hpp"
#include "vm/accel.hpp"
#include "vm/qemu.hpp"

namespace kestrel::host {

struct BootPlan {
  vm::VmConfig config;  // this VM; config.accel is the decision's
  std::string qemu;     // the QEMU binary
  vm::HostFacts facts;
  vm::AccelDecision decision;
  std::string verdict_key;  // where a KVM failure is remembered ("" unless KVM is automatic)
  std::string kernel_release;
  // A shared lock on config.initramfs: `kestrel cache clear` keeps the file
  // until QEMU has read it (dropped with the plan, once the VM has booted).
  LockFile initramfs_hold;
};

// A VM that did not greet within the boot deadline, or whose QEMU was killed
// by a signal: another try would most likely wait as long in vain, or go
// against whoever killed it, so callers do not fall back to one. (A QEMU
// that exits by itself is a plain Error: it may be the template's memory file.)
class BootFailure : public Error {
 public:
  using Error::Error;
};

// A launched VM whose agent has greeted us.
struct Booted {
  Child qemu;
  AgentClient agent;
  vm::Accel accel;
};

// Resolves the kernel, the initramfs (built once per content), QEMU and the
// accelerator, and fills in the VM configuration, its kernel flags adapted to
// the kernel's configuration (pci=noacpi only with CONFIG_X86_MPPARSE, said
// once as a notice) and the user's kernel arguments. Throws naming what the
// kernel lacks (assets/kernel_config.hpp) when it cannot run kestrel's guest.
BootPlan plan_boot(const BootOptions& options);

// Boots `config` from scratch and waits for the agent. When KVM was chosen
// automatically and the guest does not greet in time, falls back to TCG
// (remembered for this host; `plan` is updated). Throws Error naming the VM,
// the cause and the console log.
Booted boot_cold(BootPlan& plan, vm::VmConfig config, const BootOptions& options, const vm::LaunchExtras& extras = {});

std::chrono::milliseconds boot_timeout(const BootOptions& options, vm::Accel accel);

}  // namespace kestrel::host

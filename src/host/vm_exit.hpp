// Why a VM stopped, in words a user can act on: the guest kernel panicked,
// QEMU was killed by a signal, QEMU exited with a status. Used by the runner
// when its agent channel closes or QEMU's pidfd fires.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/deadline.hpp"
#include "vm/paths.hpp"

namespace kestrel::host {

// The kernel's panic reason in a console log's text ("sysrq triggered crash"
// from "Kernel panic - not syncing: sysrq triggered crash"), the last one if
// there are several; nullopt if the text shows no panic.
std::optional<std::string> find_panic(std::string_view console_text);

// "the guest kernel panicked (REASON)", else for a known wait status
// "QEMU was killed by signal 9 (SIGKILL)" / "QEMU exited with status N",
// else "QEMU exited".
std::string explain_vm_exit(const vm::VmPaths& paths, std::optional<int> wait_status);

// True when QEMU died of a signal someone sent it (SIGKILL, SIGTERM, SIGINT,
// SIGHUP: the user, the OOM killer); false when QEMU exited or crashed by
// itself (SIGABRT: e.g. forced KVM on an AMD host with PVM), which under KVM
// counts as "KVM cannot boot here".
bool killed_from_outside(std::optional<int> wait_status);

// What to tell the user when the guest's OOM killer ended processes while a
// program ran (proto::ExitStatus::oom, e.g. "process 312 (alloc, 402 MiB
// resident)"): that, the VM's memory (`mem_mib`, 0 if unknown) and the
// option that raises it, as one sentence.
std::string describe_oom(const std::string& oom, uint32_t mem_mib);

}  // namespace kestrel::host

// Warm starts (docs/warm-starts.md): instead of booting, restore a clone of
// the configuration's template, a VM saved once at "agent ready, nothing
// mounted". The first run of a configuration builds the template (runs that
// ask at the same time wait for it); a damaged template is rebuilt.
#pragma once

#include <optional>

#include "host/boot_plan.hpp"
#include "util/lockfile.hpp"

namespace kestrel::host {

// A clone of the template for plan.config, greeted; nullopt when there is no
// template to be had or the restore failed (the caller then boots cold).
// Throws Interrupted when a signal arrives on options.signal_fd.
std::optional<Booted> boot_warm(BootPlan& plan, const BootOptions& options);

// Waits for the run that builds the template of `key` to finish, i.e. for
// the key's lock (returned held). Says once (after a second) whom it waits
// for; gives up (an unlocked result, with a notice) after `limit`, or once
// the builder has been stopped (SIGSTOP, a debugger) for 5 s.
LockFile wait_for_template_builder(const std::string& key, std::chrono::milliseconds limit, const BootOptions& options);

}  // namespace kestrel::host

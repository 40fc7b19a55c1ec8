// What makes each VM a machine of its own (docs/guest.md, "What a guest
// has"): its name in /etc/hosts, so that it resolves as on a host, and a
// /etc/machine-id no other VM shares (warm clones of one template
// included). Written by SETUP into the guest root, never at boot: a
// template's clones each get theirs.
#pragma once

#include <optional>
#include <string>

namespace kestrel::agent {

// Ends the /etc/hosts line that names the VM, so that the next SETUP of a
// clone (with another name) replaces it rather than adding another.
constexpr const char* kHostsMarker = "# kestrel: this VM";

// /etc/hosts for a VM named `name`: `existing` (the root's own file, or
// Debian's default when it has none: localhost on 127.0.0.1 and ::1) less
// any line kHostsMarker ends, then "127.0.1.1 NAME" (Debian's convention for
// a machine's own name without a fixed address).
std::string hosts_naming(const std::optional<std::string>& existing, const std::string& name);

// A new machine-id: 32 lowercase hex digits from getrandom(2) (after the
// SETUP's reseed: unique per clone) and a newline, as machine-id(5) says.
std::string new_machine_id();

// /etc/resolv.conf of a VM whose network goes nowhere (`--network none`):
// no server, so a lookup of a name /etc/hosts lacks fails at once (glibc
// then asks 127.0.0.1, where nothing answers), as on a host whose resolver
// knows it is offline, instead of waiting 20 s for a server out of reach.
constexpr const char* kOfflineResolvConf =
    "# kestrel: --network none: no DNS server; names resolve from /etc/hosts only\n";

// Writes /etc/hosts and, when `name` differs from the last SETUP's, a new
// /etc/machine-id into `root` (the guest root; nothing for "", the agent's
// own root); `offline` (no NIC): kOfflineResolvConf as /etc/resolv.conf.
// Logs what fails and goes on: a run is better off with a guest that lacks
// its name than with no run.
void set_identity(const std::string& root, const std::string& name, bool offline = false);

}  // namespace kestrel::agent

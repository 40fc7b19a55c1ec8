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

// What SETUP gives a VM of its own (proto::SetupRequest's fields).
struct GuestIdentity {
  std::string name;      // the hostname; nothing is written for ""
  bool offline = false;  // no NIC: kOfflineResolvConf as /etc/resolv.conf
  // The root's /etc/hosts as the host read it; nullopt: read the root's own.
  std::optional<std::string> hosts;
  // The host's time zone (an image root): /etc/localtime's bytes and the
  // name for /etc/timezone; "" keeps the root's own.
  std::string localtime, timezone;
};

// Writes /etc/hosts and, when the name differs from the last SETUP's, a new
// /etc/machine-id into `root` (the guest root; nothing for "", the agent's
// own root), and the time zone when given. Logs what fails and goes on: a
// run is better off with a guest that lacks its name than with no run.
void set_identity(const std::string& root, const GuestIdentity& id);

// The same for a root overlay before it is mounted: reads the root's
// /etc/hosts (unless given) from `lower` (its lower layer) and writes the
// files into `upper`/etc (its upper layer, a fresh tmpfs: a machine-id
// always), so that the overlay shows them without copying /etc up through
// the 9p lower layer (tens of milliseconds under TCG on every run).
void set_identity_in_upper(const std::string& lower, const std::string& upper, const GuestIdentity& id);

}  // namespace kestrel::agent

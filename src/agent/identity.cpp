#include "agent/identity.hpp"

#include "agent/log.hpp"
#include "agent/network.hpp"
#include "util/error.hpp"
#include "util/random.hpp"
#include "util/strings.hpp"

namespace kestrel::agent {

namespace {

// Debian's /etc/hosts for a machine without a fixed address (netbase).
constexpr const char* kDefaultHosts =
    "127.0.0.1\tlocalhost\n"
    "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
    "ff02::1\t\tip6-allnodes\n"
    "ff02::2\t\tip6-allrouters\n";

}  // namespace

std::string hosts_naming(const std::optional<std::string>& existing, const std::string& name) {
  std::string out;
  for (const auto& line : split(existing ? *existing : std::string(kDefaultHosts), '\n')) {
    if (std::string_view(line).ends_with(kHostsMarker)) continue;
    out += line;
    out += '\n';
  }
  // split() gives a last, empty piece after a final newline: no blank line.
  while (out.ends_with("\n\n")) out.pop_back();
  if (out == "\n") out.clear();
  out += fmt::format("127.0.1.1\t{}\t{}\n", name, kHostsMarker);
  return out;
}

std::string new_machine_id() { return random_hex(32) + "\n"; }

void set_identity(const std::string& root, const std::string& name, bool offline) {
  if (root.empty() || name.empty()) return;
  static std::string last_name;
  try {
    UniqueFd etc = open_guest_etc(root);
    replace_etc_file(etc.get(), root, "hosts", hosts_naming(read_etc_file(root, "hosts"), name));
    if (offline) replace_etc_file(etc.get(), root, "resolv.conf", kOfflineResolvConf);
    bool new_machine = name != last_name;
    if (new_machine) replace_etc_file(etc.get(), root, "machine-id", new_machine_id());
    last_name = name;
    debugf("setup: /etc/hosts names {}{}", name, new_machine ? ", a new machine-id" : "");
  } catch (const Error& e) {
    log_errorf("cannot give the guest its name and machine-id: {}", e.what());
  }
}

}  // namespace kestrel::agent

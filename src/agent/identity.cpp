#include "agent/identity.hpp"

#include <fcntl.h>

#include "agent/log.hpp"
#include "agent/network.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/io.hpp"
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

namespace {

// What both entries share: `write` is where the files go, `read` where the
// existing /etc/hosts is; `fresh` forces a new machine-id.
void write_identity(const std::string& read, const std::string& write, const GuestIdentity& id, bool fresh) {
  static std::string last_name;
  try {
    UniqueFd etc = open_guest_etc(write);
    // A fresh upper layer has no files: each is made once, without the
    // temporary file and rename a replacement takes (each new kernel path
    // costs fresh translation under TCG).
    auto put = [&](const std::string& name, std::string_view data) {
      if (!fresh) return replace_etc_file(etc.get(), write, name, data);
      UniqueFd fd(::openat(etc.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
      if (!fd) fail_errno("cannot create /etc/{} in {}", name, write);
      write_all(fd.get(), data, name.c_str());
    };
    std::optional<std::string> hosts = id.hosts ? id.hosts : read_etc_file(read, "hosts");
    put("hosts", hosts_naming(hosts, id.name));
    if (id.offline) put("resolv.conf", kOfflineResolvConf);
    bool new_machine = fresh || id.name != last_name;
    if (new_machine) put("machine-id", new_machine_id());
    last_name = id.name;
    if (!id.localtime.empty()) put("localtime", id.localtime);
    if (!id.timezone.empty()) put("timezone", id.timezone + "\n");
    debugf("setup: /etc/hosts names {}{}{}", id.name, new_machine ? ", a new machine-id" : "",
           id.timezone.empty() ? "" : ", time zone " + id.timezone);
  } catch (const Error& e) {
    log_errorf("cannot give the guest its name and machine-id: {}", e.what());
  }
}

}  // namespace

void set_identity(const std::string& root, const GuestIdentity& id) {
  if (root.empty() || id.name.empty()) return;
  write_identity(root, root, id, false);
}

void set_identity_in_upper(const std::string& lower, const std::string& upper, const GuestIdentity& id) {
  if (lower.empty() || upper.empty() || id.name.empty()) return;
  write_identity(lower, upper, id, true);
}

}  // namespace kestrel::agent

// The environment a program gets in the guest: the host's, less a short
// deny-list of variables that describe the host session and would mislead a
// program in the VM (documented in `kestrel run --help` and README).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.hpp"

namespace kestrel::host {

const std::vector<std::string>& denied_variables();
bool is_denied_variable(std::string_view name);

// Which host variables the program gets (config keys env.pass, env.deny):
// those matching a `pass` pattern and neither a `deny` pattern nor the
// built-in deny-list. Patterns use `*` and `?` as wildcards.
struct EnvPolicy {
  std::vector<std::string> pass = {"*"};
  std::vector<std::string> deny;
};

// environ filtered by the policy.
std::vector<std::string> guest_environment(char** env, const EnvPolicy& policy = {});

// What `kestrel exec` uses: a clean root environment plus TERM from the host.
std::vector<std::string> default_exec_environment();

// The resource limits a guest's programs get (SETUP's limits, docs/guest.md,
// "What a guest has"): this process's own open files, processes, locked
// memory, stack and core size, as a program run on the host would have them.
std::vector<proto::Limit> host_limits();

// The host's time zone under `root` (vm::host_root()): /etc/localtime's
// bytes (a TZif file, else "") and its name (/etc/timezone, else the part of
// /etc/localtime's link after "zoneinfo/", else "").
struct TimeZone {
  std::string localtime;
  std::string name;
};
TimeZone host_time_zone(const std::filesystem::path& root);

// The SETUP of a VM named `hostname` ("" keeps its name): the host's clock
// now, 64 bytes of entropy, host_limits(), and `mounts`; with a root overlay
// (the host's own root) the host's /etc/hosts unless it is a link, else
// (an image's root, mounted now or by its template) and with a name the
// host's time zone.
proto::SetupRequest setup_request(const std::string& hostname, std::vector<proto::Mount> mounts);

}  // namespace kestrel::host

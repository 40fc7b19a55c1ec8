// The environment a program gets in the guest: the host's, less a short
// deny-list of variables that describe the host session and would mislead a
// program in the VM (documented in `kestrel run --help` and README).
#pragma once

#include <string>
#include <string_view>
#include <vector>

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

}  // namespace kestrel::host

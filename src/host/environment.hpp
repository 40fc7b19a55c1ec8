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

// environ less denied variables.
std::vector<std::string> guest_environment(char** env);

// What `kestrel exec` uses: a clean root environment plus TERM from the host.
std::vector<std::string> default_exec_environment();

}  // namespace kestrel::host

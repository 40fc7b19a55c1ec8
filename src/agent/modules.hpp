// Kernel modules from the initramfs: /lib/modules/load.order names them in
// dependency order (docs/guest.md); each is loaded with finit_module(2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kestrel::agent {

// File names, one per line; blank lines and '#' comments are skipped.
std::vector<std::string> parse_load_order(std::string_view text);

// Loads every module listed in dir/load.order. Already loaded (or built in:
// EEXIST) is fine; other failures are logged and the rest still load.
// Returns the number of modules that failed.
int load_modules(const std::string& dir);

}  // namespace kestrel::agent

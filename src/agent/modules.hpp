// Kernel modules from the initramfs: /lib/modules/load.order (at boot),
// load.disk (for a disk root) and load.net (for NETWORK, or at boot with
// kestrel.net=1) name them in dependency order (docs/guest.md); each is
// loaded with finit_module(2).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kestrel::agent {

// File names, one per line; blank lines and '#' comments are skipped.
std::vector<std::string> parse_load_order(std::string_view text);

// Loads every module listed in dir/`list` (load.order, load.disk, load.net). Already
// loaded (or built in: EEXIST) is fine; other failures are logged and the
// rest still load. A missing list is an empty one. Returns the failures, e.g.
// "cannot load module ext4.ko: Invalid argument".
std::vector<std::string> load_module_list(const std::string& dir, const std::string& list);

// load_module_list(dir, "load.order"); returns the number of failures.
int load_modules(const std::string& dir);

}  // namespace kestrel::agent

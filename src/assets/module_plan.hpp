// Which module files an initramfs carries, in load order, remembered per
// (modules directory, wanted list) so that `kestrel run` does not parse
// modules every time. The plan is reused while every file it names (and the
// directory's modules.builtin) has the same inode, size and mtime.
//
// Stored in cache_dir()/initramfs/plans/<sha256>.json:
//   {"format": 1, "dir", "wanted": [...], "builtin": {stat} | null,
//    "modules": [{"name", "path", "ino", "size", "mtime_ns"}]}
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace kestrel::assets {

struct PlannedModule {
  std::string name;            // normalized module name
  std::filesystem::path path;  // the file (possibly compressed)
};

// The closure of `wanted` over the modules in `modules_dir`, in load order.
// An empty modules_dir yields no modules (everything is built in). Throws
// Error naming a module that is neither there nor built in.
std::vector<PlannedModule> plan_modules(const std::filesystem::path& modules_dir,
                                        const std::vector<std::string>& wanted);

}  // namespace kestrel::assets

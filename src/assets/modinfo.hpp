// Kernel module metadata: the .modinfo ELF section ("key=value\0" strings)
// gives a module's name and what it depends on; file names and the
// modules.builtin list use '-' where module names use '_'.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace kestrel::assets {

struct ModInfo {
  std::string name;                  // normalized: '-' → '_'
  std::vector<std::string> depends;  // normalized, in the order listed
};

// Module names compare with '-' and '_' as equal; this is the canonical form.
std::string normalize_module_name(std::string_view name);

// True for "x.ko", "x.ko.xz", "x.ko.zst", "x.ko.gz".
bool is_module_file(std::string_view file_name);
// "virtio-rng.ko.xz" → "virtio_rng".
std::string module_name_from_file(std::string_view file_name);

// Parses the .modinfo section of an (uncompressed) module. Without a name=
// entry, the name comes from file_name. Throws Error naming file_name if the
// module is not a well-formed ELF file.
ModInfo parse_modinfo(std::string_view module, std::string_view file_name);

// Reads a module file, decompressing .ko.xz/.ko.zst/.ko.gz.
std::string read_module_file(const std::filesystem::path& path);

// The module names in a modules.builtin file ("kernel/fs/ext4/ext4.ko" lines).
std::unordered_set<std::string> parse_modules_builtin(std::string_view text);

}  // namespace kestrel::assets

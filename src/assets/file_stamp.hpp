// A file's identity for caches that must notice when an input changes
// without reading it: inode, size and modification time.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

namespace kestrel::assets {

// {"ino", "size", "mtime_ns"}, or null if the file does not exist.
nlohmann::json file_stamp(const std::filesystem::path& path);

// True if `path` still has the recorded stamp (both null counts as equal).
bool same_stamp(const nlohmann::json& recorded, const std::filesystem::path& path);

}  // namespace kestrel::assets

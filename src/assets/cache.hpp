// Where kestrel keeps downloaded and built assets.
#pragma once

#include <filesystem>

namespace kestrel::assets {

// $KESTREL_CACHE_DIR, else $XDG_CACHE_HOME/kestrel, else ~/.cache/kestrel.
// Created (0755) on first use.
std::filesystem::path cache_dir();

}  // namespace kestrel::assets

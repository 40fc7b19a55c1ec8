// Configuration files: the project's kestrel.toml (found by walking up from
// the current directory) and the user's $XDG_CONFIG_HOME/kestrel/config.toml.
// A bad file is an error that names it: "PATH:LINE: message".
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/keys.hpp"

namespace kestrel::config {

// getenv, or a fake in tests. Returns nullptr when unset.
using GetEnv = std::function<const char*(const char* name)>;

inline constexpr const char* kProjectFileName = "kestrel.toml";

// The nearest kestrel.toml in `start` or one of its parents.
std::optional<std::filesystem::path> find_project_file(const std::filesystem::path& start);

// $XDG_CONFIG_HOME/kestrel/config.toml (an absolute XDG_CONFIG_HOME only),
// else $HOME/.config/kestrel/config.toml; nullopt when neither is known.
std::optional<std::filesystem::path> user_file_path(const GetEnv& getenv);

// One key set in a file.
struct FileSetting {
  const Key* key;
  Value value;
  int line;
};

// Parses and checks `text` as the contents of `path` (named in errors as
// `display`). Unknown keys, wrong types and syntax errors throw Error
// "DISPLAY:LINE: message".
std::vector<FileSetting> parse_file_text(const std::string& text, const std::filesystem::path& path,
                                         const std::string& display);

// Reads and parses the file.
std::vector<FileSetting> read_config_file(const std::filesystem::path& path, const std::string& display);

}  // namespace kestrel::config

// The effective configuration: every key of keys.cpp with its value and
// where that value came from. Precedence, highest first: command line >
// KESTREL_* environment > project kestrel.toml > user config.toml > built-in
// default. See docs/config.md.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/file.hpp"
#include "config/keys.hpp"

namespace kestrel::config {

enum class Source { kDefault, kUserFile, kProjectFile, kEnvironment, kCommandLine };

struct Origin {
  Source source = Source::kDefault;
  std::string where;  // "PATH:LINE", "KESTREL_X" or "--opt"; empty for defaults
};
// "default", "project file kestrel.toml:3", "environment KESTREL_CPUS", ...
std::string describe_origin(const Origin& origin);

struct Entry {
  const Key* key;
  Value value;
  Origin origin;
};

struct Sources {
  std::filesystem::path cwd;  // where the project file search starts
  GetEnv getenv;              // the environment
};

class Config {
 public:
  // Defaults, then the user file, the project file and the environment.
  // Throws Error "PATH:LINE: message" for a bad file and "KESTREL_X=...: message"
  // for a bad variable.
  static Config load(const Sources& sources);
  // load() with the real cwd and environment.
  static Config load();
  // Like load(), but a bad file or variable does not stop the loading: its
  // message (as load() would throw it) is appended to `problems` and it is
  // skipped, the layers below it stand. For `kestrel doctor`, which reports
  // every bad setting at once.
  static Config load_lenient(const Sources& sources, std::vector<std::string>& problems);
  static Config load_lenient(std::vector<std::string>& problems);

  // A command-line option's value for `key`, as text. Throws Error without location.
  void set_from_command_line(std::string_view key, std::string_view text, std::string_view option);

  int64_t count(std::string_view key) const;
  double seconds(std::string_view key) const;
  bool flag(std::string_view key) const;
  const std::string& text(std::string_view key) const;
  const std::vector<std::string>& list(std::string_view key) const;
  const Entry& entry(std::string_view key) const;

  const std::vector<Entry>& entries() const { return entries_; }
  // The files that were looked at (found or not), for `kestrel config`.
  std::optional<std::filesystem::path> project_file() const { return project_file_; }
  std::optional<std::filesystem::path> user_file() const { return user_file_; }
  bool user_file_exists() const { return user_file_exists_; }

 private:
  static Config load(const Sources& sources, std::vector<std::string>* problems);
  Entry& mutable_entry(std::string_view key);
  std::vector<Entry> entries_;
  std::optional<std::filesystem::path> project_file_;
  std::optional<std::filesystem::path> user_file_;
  bool user_file_exists_ = false;
};

// How a file is named in messages: relative to `cwd` when inside it
// ("kestrel.toml", "sub/kestrel.toml"), else absolute.
std::string display_path(const std::filesystem::path& file, const std::filesystem::path& cwd);

}  // namespace kestrel::config

// The write-through trees of a run: the host directories where what the
// program writes lands on the host (docs/isolation.md). Everything else the
// guest writes goes to a throw-away layer and vanishes with the VM.
//
// `auto` stands for the test's own work:
//   - its project: the nearest ancestor of the working directory (itself
//     included) that holds `.git` or `kestrel.toml`; where there is none, or
//     it is refused below, the working directory itself;
//   - the build tree the program was built in: the nearest ancestor of its
//     directory holding `CMakeCache.txt` (a CMake build tree) or
//     `CACHEDIR.TAG` (cargo's target directory), or go's per-package work
//     directory (`…/go-build<N>/b<N>/`). A program anywhere else gets none.
// A tree is refused (left out, and said so) when it is the root, a system
// directory (/usr, /etc, /var, /opt, …), a place everyone shares (/tmp,
// /var/tmp, /home, …), a home directory or one above the user's home, or a
// directory the user cannot write. A tree inside another one is covered by it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kestrel::host {

struct WriteTree {
  std::filesystem::path path;  // canonical
  std::string why;             // e.g. "project (holds .git)"
};

struct WritePlan {
  std::vector<WriteTree> trees;    // in the order found, none inside another
  std::vector<WriteTree> refused;  // candidates left out; why says why
};

struct WriteInputs {
  // The `write_through` setting: "auto" and absolute paths; empty: none.
  std::vector<std::string> setting;
  std::string setting_origin;  // for errors about a configured path
  std::filesystem::path cwd;
  std::optional<std::filesystem::path> program;  // absolute; none for `kestrel config`
  std::filesystem::path home;                    // the user's home ("" if unknown)
};

// Throws Error for a configured path that cannot be a tree (missing, not a
// directory, refused); automatic candidates that are refused are listed.
WritePlan plan_write_through(const WriteInputs& in);

// Why `dir` (canonical) must not be written through, or "" if it may be.
std::string write_refusal(const std::filesystem::path& dir, const std::filesystem::path& home);

// The user's home directory: $HOME, else the password database's.
std::filesystem::path user_home();

// The lines `--verbose`, KESTREL_TRACE and `kestrel config` print.
std::vector<std::string> describe_write_plan(const WritePlan& plan);

}  // namespace kestrel::host

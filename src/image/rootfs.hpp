// Building an image's disk from its recipe, on the host (docs/images.md):
// mmdebstrap into a tarball (root mode as root, unshare mode otherwise),
// unpacked with the recipe's `files` added (under fakeroot when not root, so
// owners, setuid bits and device nodes are right without privileges), then
// `mkfs.ext4 -d` and a conversion to qcow2.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "image/recipe.hpp"

namespace kestrel::image {

// Progress of a build, in the stages `kestrel image build` shows.
struct Progress {
  std::string name;  // the image's name
  std::function<void(const std::string&)> say;
  int signal_fd = -1;
  void stage(const std::string& stage, const std::string& what);
  void done(const std::string& what);  // "STAGE done in X s[, what]"
  const std::string& current() const { return current_; }

 private:
  std::string current_;
  std::chrono::steady_clock::time_point started_;
};

// The mmdebstrap stage an "I: ..." line of its output starts, if any:
// "resolve", "download" or "unpack".
std::optional<std::string> mmdebstrap_stage(const std::string& line);

// The package apt could not find, from mmdebstrap's output ("E: Unable to
// locate package foo", "E: Package 'foo' has no installation candidate", ...).
std::optional<std::string> missing_package(const std::vector<std::string>& lines);

// The mmdebstrap command line for a recipe (output: a tarball at `tar`).
std::vector<std::string> mmdebstrap_argv(const Recipe& recipe, const std::filesystem::path& tar, bool as_root);

// "pkg=version" for every installed package of the dpkg status file `status`, sorted.
std::vector<std::string> installed_packages(const std::string& status);

struct RootFs {
  std::filesystem::path disk;         // qcow2
  std::vector<std::string> packages;  // installed, "name=version"
};

// Builds the disk of `recipe` in `work` (an empty directory that the caller
// removes). Throws Error naming what failed (a missing package by name).
RootFs build_rootfs(const Recipe& recipe, const std::filesystem::path& work, Progress& progress);

}  // namespace kestrel::image

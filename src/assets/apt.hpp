// Asking apt about packages and downloading them, without root and without
// installing anything: how kestrel gets Debian's kernel (linux-image-amd64)
// and the kernel sources it builds the lean kernel from (linux-source-6.1).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "assets/command.hpp"

namespace kestrel::assets {

struct AptPackage {
  std::string name;     // linux-image-6.1.0-56-amd64
  std::string version;  // 6.1.192-2, if apt-cache said
  uint64_t size = 0;    // of the .deb, if apt-cache said
};

// Runs apt-get or apt-cache; a failure to start names the way out (apt is
// for Debian and Ubuntu; --kernel takes a kernel of one's own).
CommandResult run_apt(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                      std::chrono::minutes limit);

// The version and size of `name`'s candidate (`apt-cache show
// --no-all-versions`); both left empty if apt does not say.
AptPackage apt_candidate(const std::string& name);

// apt's stderr less its note that, as root, it could not drop privileges to
// _apt for a directory _apt cannot write: harmless, and about to be deleted.
std::string without_sandbox_noise(std::string_view err);

// The "<name>_*.deb" that `apt-get download <name>` left in dir. Throws if
// there is none.
std::filesystem::path downloaded_deb(const std::filesystem::path& dir, const std::string& name);

// The hint for a failed `apt-get download`.
inline constexpr std::string_view kAptStaleHint =
    "(if apt cannot find it, its package lists may be stale: run `apt-get update` as root)";

}  // namespace kestrel::assets

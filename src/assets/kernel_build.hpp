// `kestrel kernel build`: a lean guest kernel built from Debian's
// linux-source-6.1 with kestrel's Kconfig fragment (kernel/lean.config, compiled
// into kestrel), everything the guest needs built in. docs/kernels.md.
//
// Stages: download (`apt-get download linux-source-6.1`, no root), unpack
// (the source tarball, into a ".build-lean-*" directory of the kernel cache),
// configure (`make tinyconfig`, merge the fragment, `make olddefconfig`, then
// every option of the fragment must have survived), compile (`make vmlinux`),
// install (stripped vmlinux, .config, modules/modules.builtin, kernel.json:
// assets/kernel_store.hpp). The build tree is removed in every case.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "assets/kernel.hpp"

namespace kestrel::assets {

// The Debian package the sources come from.
inline constexpr std::string_view kLeanSourcePackage = "linux-source-6.1";

// kernel/lean.config, as compiled into kestrel.
std::string_view lean_fragment();

// One option of a .config or a fragment: "CONFIG_X=v" is {"X", "v"} (strings
// keep their quotes), "# CONFIG_X is not set" is {"X", "n"}.
struct KconfigOption {
  std::string name;
  std::string value;
  bool operator==(const KconfigOption&) const = default;
};

// The options of a .config or fragment, in order; other lines (comments,
// blank lines) are skipped. Throws Error naming the line of an option
// given twice with different values, or of a line that looks like an option
// but is not one ("CONFIG_X" without a value).
std::vector<KconfigOption> parse_kconfig(std::string_view text, std::string_view what);

// By name.
std::map<std::string, std::string> kconfig_map(const std::vector<KconfigOption>& options);

// The options of `fragment` that `config` (a final .config) does not have as
// asked, as lines for a message: "CONFIG_X=y (the build has: not set)". An
// option absent from `config` counts as "n" (an option whose dependencies
// are off is not even written).
std::vector<std::string> unmet_options(const std::vector<KconfigOption>& fragment,
                                       const std::map<std::string, std::string>& config);

// The cache key of a lean kernel: a SHA-256 (hex) over the build recipe's
// version, the source package's version, the compiler, and the fragment's
// options (sorted by name: comments and order do not count).
std::string lean_key(std::string_view source_version, std::string_view compiler,
                     const std::vector<KconfigOption>& fragment);

// The kernel's release (its `uname -r` and its directory in the cache) for
// a source package version and a key: "6.1.192-2" → "6.1.192-lean-<key's
// first 8 digits>" (no epoch, no Debian revision).
std::string lean_release(std::string_view source_version, std::string_view key);

struct LeanBuildOptions {
  int jobs = 0;        // make -j; 0: the CPUs this process may use
  bool force = false;  // build even if this key is cached
  int signal_fd = -1;  // a non-blocking signalfd: a signal stops the build (Interrupted)
  Progress progress;   // one line per stage, and the compile's progress
};

// Builds (or finds cached) the lean kernel of the current fragment. Throws
// Error naming what is missing (build tools, the source package, an option
// that did not survive, a failed compile with the log's last lines and where
// the whole log was kept); Interrupted on a signal. Builds of one key are
// serialized by a lock; a build killed outright leaves a ".build-lean-*"
// tree that the next build removes.
Kernel build_lean_kernel(const LeanBuildOptions& options);

}  // namespace kestrel::assets

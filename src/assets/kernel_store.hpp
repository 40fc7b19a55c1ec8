// The kernel cache: cache_dir()/kernels/<release>/ holds one kernel, fetched
// from Debian (`kestrel kernel fetch`) or built (`kestrel kernel build`, a
// lean kernel: docs/kernels.md).
//
//   vmlinux          the ELF kernel (PVH), decompressed from the package's vmlinuz
//                    (a kernel without PVH note keeps vmlinuz instead: "image")
//   config           the kernel's .config
//   modules/         <file>.ko (flattened, uncompressed) + modules.builtin
//                    (a lean kernel: modules.builtin only, everything is built in)
//   lean.config      a lean kernel's fragment, as it was built; build.log its make output
//   kernel.json      {"format": 1, "release", "kind" ("debian" | "lean"), "package",
//                     "version", "deb", "image", "pvh", "modules": [{"name", "file",
//                     "depends"}] in load order; a lean kernel's "key", "compiler", "built"}
//
// Entries are built in a ".tmp-*" sibling (a lean kernel: ".build-lean-*")
// and renamed into place, so a directory with a kernel.json is complete;
// names starting with '.' are never kernels. cache_dir()/kernels/.lock
// serializes fetches, .lean-<key>.lock the builds of one lean kernel.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "assets/kernel.hpp"
#include "assets/modinfo.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {

inline constexpr int kKernelRecordFormat = 1;

struct KernelRecord {
  std::string release;
  std::string kind = "debian";    // "debian" (kernel fetch) or "lean" (kernel build)
  std::string package;            // linux-image-6.1.0-56-amd64 (lean: linux-source-6.1)
  std::string version;            // 6.1.192-2
  std::string deb;                // the downloaded file's name
  std::string image = "vmlinux";  // the file QEMU boots: vmlinux, or vmlinuz without PVH
  bool pvh = false;
  struct Module {
    std::string name;
    std::string file;  // under modules/
    std::vector<std::string> depends;
  };
  std::vector<Module> modules;  // in load order
  // A lean kernel's: its cache key (assets/kernel_build.hpp), the compiler
  // that built it (`gcc --version`'s first line), when (unix seconds).
  std::string key;
  std::string compiler;
  int64_t built = 0;
};

// cache_dir()/kernels, created if needed.
std::filesystem::path kernels_dir();

// "<dir>/kernel.json" as JSON text.
std::string kernel_record_json(const KernelRecord& record);
// Reads <dir>/kernel.json; nullopt if it is missing, unreadable, or of
// another format version (a partial or foreign directory).
std::optional<KernelRecord> read_kernel_record(const std::filesystem::path& dir);

// The Kernel a cached directory describes.
Kernel cached_kernel(const std::filesystem::path& dir, const KernelRecord& record);

// Replaces (or creates) `final_dir` with `staged`, atomically for readers
// (the old directory is moved aside, then removed).
void install_kernel_dir(TempDir& staged, const std::filesystem::path& final_dir);

// Orders version strings the way people read them: runs of digits compare as
// numbers ("6.1.0-56" > "6.1.0-9"), everything else byte by byte.
// Returns <0, 0 or >0.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace kestrel::assets

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
// Entries are built in a ".tmp-*" sibling (a lean kernel: inside its
// ".build-lean-<key16>-*" build tree) and renamed into place, so a directory
// with a kernel.json is complete; names starting with '.' are never kernels.
// cache_dir()/kernels/.lock serializes fetches, .lean-<key16>.lock the builds
// of one lean kernel (removed by the build when it is done; one a killed
// build left is removed by the next build or `kestrel cache clear`).
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

// 2: a Debian kernel's modules include dummy (`--network none`); a kernel
// cached before reads as not cached, and `kestrel kernel fetch` fetches it again.
inline constexpr int kKernelRecordFormat = 2;

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

// The lock that the builds of the lean kernel of `key16` (a key's first 16
// digits) take in turn: <kernels>/.lean-<key16>.lock.
std::filesystem::path lean_build_lock(const std::filesystem::path& kernels, std::string_view key16);

// What sweep_kernel_builds found.
struct KernelBuildSweep {
  size_t builds_removed = 0;  // build trees of builds that died
  size_t locks_removed = 0;   // lock files nobody held
  // The build trees of `kestrel kernel build`s running now (their lock is held).
  std::vector<std::filesystem::path> running;
};

// Removes what `kestrel kernel build`s that died (SIGKILL, a power cut) left
// in the kernel cache: their ".build-lean-<key16>-*" trees (~1.5 GB each) and
// ".lean-<key16>.lock" files nobody holds. A build that runs (its lock held)
// keeps both. `own_key16`: the caller holds that key's lock and has no build
// tree yet, so trees of that key are leftovers too.
KernelBuildSweep sweep_kernel_builds(std::string_view own_key16 = {});

// What clear_kernel_cache did.
struct ClearedKernels {
  size_t removed = 0;  // kernels
  KernelBuildSweep builds;
  bool fetch_running = false;  // a `kestrel kernel fetch` held .lock: its files were kept
  bool linked = false;         // cache_dir()/kernels was a symbolic link: only the link was removed
};

// `kestrel cache clear --kernels`: removes every cached kernel and the
// leftovers of fetches and builds, but not what a fetch or a build running
// now works in (its lock, its build tree, its temporary entries). A
// cache_dir()/kernels that is a symbolic link (another cache's kernels) loses
// the link only.
ClearedKernels clear_kernel_cache();

// `kestrel kernel rm RELEASE`: removes one cached kernel (moved aside first,
// so no reader sees half of it). Throws naming the cached releases when there
// is no such kernel, and refuses a lean kernel whose build (`kernel build
// --force`) is running.
void remove_cached_kernel(std::string_view release);

// Orders version strings the way people read them: runs of digits compare as
// numbers ("6.1.0-56" > "6.1.0-9"), everything else byte by byte.
// Returns <0, 0 or >0.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace kestrel::assets

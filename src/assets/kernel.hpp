// Guest kernels: fetched from Debian's linux-image-amd64 without installing
// it, or supplied by the user. See docs/guest.md.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kestrel::assets {

struct Kernel {
  std::string release;          // e.g. "6.1.0-56-amd64"
  std::filesystem::path image;  // vmlinux (PVH ELF) or bzImage
  bool pvh = false;             // image is an ELF with a Xen PVH note
  // Directory holding the module files (*.ko, possibly compressed, in any
  // subdirectory layout); empty when the kernel needs no modules.
  std::filesystem::path modules_dir;
  // "debian:linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb", "lean:linux-source-6.1_6.1.192-2_all.deb"
  // or "user"
  std::string source;
  bool lean = false;  // built by `kestrel kernel build` (docs/kernels.md)
};

// Progress lines ("downloading …", "extracting …") go through this callback.
using Progress = std::function<void(const std::string& line)>;

// `kestrel kernel fetch`: resolves linux-image-amd64 to the current package
// with apt-cache, downloads it with `apt-get download` (no root, no install),
// extracts vmlinux (decompressed from vmlinuz) and the modules kestrel needs
// into cache_dir()/kernels/<release>/, atomically. Idempotent: an already
// cached release is not downloaded again unless `force`.
Kernel fetch_debian_kernel(const Progress& progress, bool force = false);

// Kernels in the cache: Debian's, newest release first (the first is the
// default), then the lean ones, the newest release and the latest built first
// (the first is `--kernel lean`).
std::vector<Kernel> list_cached_kernels();

// The release name that stands for the newest lean kernel (`--kernel lean`,
// `kernel = "lean"`).
inline constexpr std::string_view kLeanKernel = "lean";
// What `kestrel kernel ls` calls the kernel an empty `kernel` setting selects.
inline constexpr std::string_view kDefaultKernel = "default";

// What selects each of `kernels` (list_cached_kernels(), in its order) when
// the `kernel` setting names no release: "default" (empty: the first Debian
// kernel), "lean" (the first lean kernel), or "" (the others: by release only).
std::vector<std::string_view> cached_kernel_roles(const std::vector<Kernel>& kernels);

// What the user asked for: nothing (the newest cached Debian kernel), a
// release name in the cache, "lean" (the newest lean kernel: `kestrel kernel
// build`), or a path to a vmlinux/bzImage plus optional modules dir.
struct KernelSpec {
  std::string release;                // empty: newest cached Debian kernel; "lean"
  std::filesystem::path image;        // non-empty: user kernel
  std::filesystem::path modules_dir;  // with image: where its modules are
};

// Throws Error naming the command that fixes it ("run `kestrel kernel fetch`",
// "run `kestrel kernel build`") when nothing suitable is found.
Kernel resolve_kernel(const KernelSpec& spec);

}  // namespace kestrel::assets

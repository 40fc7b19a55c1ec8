// Guest kernels: fetched from Debian's linux-image-amd64 without installing
// it, or supplied by the user. See docs/guest.md.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace kestrel::assets {

struct Kernel {
  std::string release;          // e.g. "6.1.0-56-amd64"
  std::filesystem::path image;  // vmlinux (PVH ELF) or bzImage
  bool pvh = false;             // image is an ELF with a Xen PVH note
  // Directory holding the module files (*.ko, possibly compressed, in any
  // subdirectory layout); empty when the kernel needs no modules.
  std::filesystem::path modules_dir;
  std::string source;  // "debian:linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb" or "user"
};

// Progress lines ("downloading …", "extracting …") go through this callback.
using Progress = std::function<void(const std::string& line)>;

// `kestrel kernel fetch`: resolves linux-image-amd64 to the current package
// with apt-cache, downloads it with `apt-get download` (no root, no install),
// extracts vmlinux (decompressed from vmlinuz) and the modules kestrel needs
// into cache_dir()/kernels/<release>/, atomically. Idempotent: an already
// cached release is not downloaded again unless `force`.
Kernel fetch_debian_kernel(const Progress& progress, bool force = false);

// Kernels in the cache, newest release first.
std::vector<Kernel> list_cached_kernels();

// What the user asked for: nothing (the newest cached kernel), a release name
// in the cache, or a path to a vmlinux/bzImage plus optional modules dir.
struct KernelSpec {
  std::string release;                // empty: newest cached
  std::filesystem::path image;        // non-empty: user kernel
  std::filesystem::path modules_dir;  // with image: where its modules are
};

// Throws Error naming the command that fixes it ("run `kestrel kernel fetch`")
// when nothing suitable is found.
Kernel resolve_kernel(const KernelSpec& spec);

}  // namespace kestrel::assets

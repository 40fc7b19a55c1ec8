// Kernels in the cache, and resolving what the user asked for (a cached
// release, or a kernel image of their own) to a Kernel.
#include "assets/kernel.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "assets/cache.hpp"
#include "assets/elf.hpp"
#include "assets/kernel_store.hpp"
#include "assets/mapped_file.hpp"
#include "assets/vmlinux.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "util/sha256.hpp"

namespace kestrel::assets {

namespace {

namespace fs = std::filesystem;

std::string fetch_hint() { return "run `kestrel kernel fetch` to download Debian's (about 70 MB)"; }

// Writes the ELF kernel inside a bzImage to `path` (atomically). Returns
// whether it has a PVH entry; on false nothing is left at `path`.
bool extract_user_vmlinux(std::string_view bzimage, const fs::path& path, const std::string& what) {
  std::string templ = path.string() + ".tmp.XXXXXX";
  int raw_fd = ::mkstemp(templ.data());
  if (raw_fd < 0) fail_errno("cannot create a temporary file next to {}", path.string());
  UniqueFd fd(raw_fd);
  struct Unlink {
    std::string path;
    ~Unlink() {
      if (!path.empty()) ::unlink(path.c_str());
    }
  } cleanup{templ};
  extract_vmlinux(
      bzimage, [&](std::string_view chunk) { write_all(fd.get(), chunk, templ.c_str()); }, what);
  fd.reset();
  bool pvh = elf::has_pvh_note(MappedFile(templ).bytes(), what);
  if (!pvh) return false;
  if (::chmod(templ.c_str(), 0644) != 0) fail_errno("cannot chmod {}", templ);
  if (::rename(templ.c_str(), path.c_str()) != 0) fail_errno("cannot rename {} to {}", templ, path.string());
  cleanup.path.clear();
  return true;
}

// A kernel of the user's: an ELF vmlinux with a PVH note as is; a bzImage
// through the ELF kernel it carries (cached by the image's SHA-256) when that
// has a PVH note, else as a bzImage.
Kernel user_kernel(const KernelSpec& spec) {
  Kernel k;
  k.source = "user";
  k.image = fs::absolute(spec.image).lexically_normal();
  if (!spec.modules_dir.empty()) {
    k.modules_dir = fs::absolute(spec.modules_dir).lexically_normal();
    std::error_code ec;
    if (!fs::is_directory(k.modules_dir, ec))
      fail("kernel modules directory {} does not exist or is not a directory", k.modules_dir.string());
  }
  std::error_code ec;
  if (!fs::is_regular_file(k.image, ec)) fail("kernel image {} does not exist or is not a file", k.image.string());
  MappedFile image(k.image);
  std::string what = k.image.string();

  if (elf::is_elf64(image.bytes())) {
    k.pvh = elf::has_pvh_note(image.bytes(), what);
    if (!k.pvh)
      fail(
          "{} is an ELF kernel without a Xen PVH entry note (CONFIG_PVH=y), which QEMU cannot boot "
          "directly; pass its bzImage (arch/x86/boot/bzImage) instead",
          what);
    k.release = vmlinux_release(image.bytes());
  } else if (is_bzimage(image.bytes())) {
    k.release = bzimage_release(image.bytes());
    fs::path dir = cache_dir() / "user-kernels";
    make_dirs(dir, 0755);
    std::string key = sha256_hex(image.bytes());
    fs::path vmlinux = dir / (key + ".vmlinux");
    fs::path no_pvh = dir / (key + ".no-pvh");  // remembers "boot the bzImage"
    if (fs::exists(vmlinux, ec)) {
      k.image = vmlinux;
      k.pvh = true;
    } else if (!fs::exists(no_pvh, ec)) {
      std::string reason;
      try {
        if (extract_user_vmlinux(image.bytes(), vmlinux, what)) {
          k.image = vmlinux;
          k.pvh = true;
        } else {
          reason = "its kernel has no Xen PVH entry note\n";
        }
      } catch (const Error& e) {
        // Not fatal: QEMU still boots the bzImage itself, just more slowly.
        reason = std::string(e.what()) + "\n";
      }
      if (!k.pvh) write_file_atomic(no_pvh, reason);
    }
    // Headers without a version string: the extracted kernel's banner has it.
    if (k.release.empty() && k.pvh) k.release = vmlinux_release(MappedFile(k.image).bytes());
  } else {
    fail("{} is neither an ELF vmlinux nor a bzImage", what);
  }
  if (k.release.empty()) k.release = k.modules_dir.empty() ? "unknown" : k.modules_dir.filename().string();
  return k;
}

std::string cached_names(const std::vector<Kernel>& kernels) {
  std::string out;
  for (const Kernel& k : kernels) out += (out.empty() ? "" : ", ") + k.release;
  return out;
}

}  // namespace

std::vector<Kernel> list_cached_kernels() {
  fs::path dir = kernels_dir();
  struct Entry {
    Kernel kernel;
    int64_t built;
  };
  std::vector<Entry> entries;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.starts_with(".") || !it->is_directory(ec)) continue;  // temp dirs, builds, locks
    std::optional<KernelRecord> record = read_kernel_record(it->path());
    if (!record || record->release != name) continue;
    Kernel k = cached_kernel(it->path(), *record);
    if (fs::is_regular_file(k.image, ec)) entries.push_back({std::move(k), record->built});
  }
  if (ec) fail("cannot list {}: {}", dir.string(), ec.message());
  // Debian's first (the default is the first of them), then the lean ones;
  // among lean kernels of one version the latest built (from the fragment
  // in use, as a rule) comes first.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.kernel.lean != b.kernel.lean) return !a.kernel.lean;
    if (a.kernel.lean) {
      std::string_view va = a.kernel.release, vb = b.kernel.release;
      va = va.substr(0, va.find("-lean-"));
      vb = vb.substr(0, vb.find("-lean-"));
      if (int c = compare_versions(va, vb)) return c > 0;
      if (a.built != b.built) return a.built > b.built;
    }
    return compare_versions(a.kernel.release, b.kernel.release) > 0;
  });
  std::vector<Kernel> kernels;
  for (Entry& e : entries) kernels.push_back(std::move(e.kernel));
  return kernels;
}

std::vector<std::string_view> cached_kernel_roles(const std::vector<Kernel>& kernels) {
  std::vector<std::string_view> roles(kernels.size());
  bool debian = false, lean = false;
  for (size_t i = 0; i < kernels.size(); ++i) {
    bool& seen = kernels[i].lean ? lean : debian;
    if (!seen) roles[i] = kernels[i].lean ? kLeanKernel : kDefaultKernel;
    seen = true;
  }
  return roles;
}

Kernel resolve_kernel(const KernelSpec& spec) {
  if (!spec.image.empty()) return user_kernel(spec);
  if (!spec.modules_dir.empty())
    fail("a kernel modules directory ({}) needs the kernel image it belongs to", spec.modules_dir.string());
  std::vector<Kernel> kernels = list_cached_kernels();
  std::vector<std::string_view> roles = cached_kernel_roles(kernels);
  auto with_role = [&](std::string_view role) -> const Kernel* {
    for (size_t i = 0; i < kernels.size(); ++i)
      if (roles[i] == role) return &kernels[i];
    return nullptr;
  };
  if (spec.release == kLeanKernel) {
    if (const Kernel* k = with_role(kLeanKernel)) return *k;
    fail("no lean kernel built in {}; run `kestrel kernel build` (docs/kernels.md)", kernels_dir().string());
  }
  if (kernels.empty()) fail("no guest kernel in {}; {}", kernels_dir().string(), fetch_hint());
  if (spec.release.empty()) {
    if (const Kernel* k = with_role(kDefaultKernel)) return *k;
    fail("no Debian kernel in {}; {}, or pass `--kernel lean` for the lean kernel built here ({})",
         kernels_dir().string(), fetch_hint(), kernels.front().release);
  }
  for (const Kernel& k : kernels)
    if (k.release == spec.release) return k;
  fail("kernel {} is not in {} (cached: {}); {}", spec.release, kernels_dir().string(), cached_names(kernels),
       "run `kestrel kernel fetch` for Debian's current one, `kestrel kernel build` for a lean one, or pass a "
       "kernel image");
}

}  // namespace kestrel::assets

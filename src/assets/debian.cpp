// `kestrel kernel fetch`: Debian's current linux-image-amd64, downloaded with
// apt-get (no root, nothing installed) and reduced to what a guest needs.
// Layout of the result: assets/kernel_store.hpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <thread>
#include <unordered_set>

#include "assets/apt.hpp"
#include "assets/command.hpp"
#include "assets/deb.hpp"
#include "assets/elf.hpp"
#include "assets/initramfs.hpp"
#include "assets/kernel.hpp"
#include "assets/kernel_store.hpp"
#include "assets/mapped_file.hpp"
#include "assets/modinfo.hpp"
#include "assets/modules.hpp"
#include "assets/vmlinux.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "util/lockfile.hpp"
#include "util/random.hpp"
#include "util/strings.hpp"

namespace kestrel::assets {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kMetaPackage = "linux-image-amd64";
constexpr std::string_view kImagePrefix = "linux-image-";

// Besides default_modules(), the cache keeps these if the kernel has them, so
// that disks (disk_modules()) and networks (net_modules()) need no second fetch.
const std::vector<std::string>& optional_modules() {
  static const std::vector<std::string> modules = [] {
    std::vector<std::string> all = disk_modules();
    all.insert(all.end(), net_modules().begin(), net_modules().end());
    return all;
  }();
  return modules;
}

// Dependencies of the modules above in Debian's 6.1 kernels that come
// *before* their users in the package's file order (the scan learns later
// ones as it goes). Only a hint to avoid a second pass; never a requirement.
const std::unordered_set<std::string> kKnownDependencies = {
    "virtio",   "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "netfs",   "fscache",
    "9pnet",    "crc16",       "crc32c_generic",        "crc32c_intel",          "mbcache", "jbd2",
    "failover", "net_failover"};

// ---- apt ---------------------------------------------------------------

AptPackage resolve_package() {
  std::vector<std::string> argv = {"apt-cache", "depends", std::string(kMetaPackage)};
  CommandResult r = run_apt(argv, {}, std::chrono::minutes(2));
  if (r.status != 0) fail("cannot resolve {}: {}", kMetaPackage, command_failure(argv, r));
  AptPackage p;
  for (const std::string& line : split(r.out, '\n')) {
    std::string_view l = trim(line);
    if (l.starts_with("|")) l.remove_prefix(1);
    if (!l.starts_with("Depends:")) continue;
    std::string_view name = trim(l.substr(8));
    if (name.starts_with(kImagePrefix) && name.find('<') == std::string_view::npos) {
      p.name = name;
      break;
    }
  }
  if (p.name.empty())
    fail(
        "cannot resolve {}: `apt-cache depends` names no linux-image package; is {} known to apt "
        "(run `apt-get update`)?",
        kMetaPackage, kMetaPackage);

  // Version and size, for the progress line; not essential.
  AptPackage candidate = apt_candidate(p.name);
  p.version = candidate.version;
  p.size = candidate.size;
  return p;
}

fs::path download(const AptPackage& p, const fs::path& dir) {
  std::vector<std::string> argv = {"apt-get", "download", p.name};
  CommandResult r = run_apt(argv, dir, std::chrono::minutes(30));
  r.err = without_sandbox_noise(r.err);
  if (r.status != 0) fail("cannot download {}: {}\n{}", p.name, command_failure(argv, r), kAptStaleHint);
  return downloaded_deb(dir, p.name);
}

// ---- the package's contents --------------------------------------------

struct FoundModule {
  std::string file;  // "virtio-rng.ko", as in the package
  std::vector<std::string> depends;
};

// What one pass over data.tar learns.
struct Scan {
  std::string release;  // from boot/vmlinuz-<release>
  std::string vmlinuz;
  std::string config;
  std::optional<std::string> builtin_text;
  std::map<std::string, FoundModule> modules;  // every module, by name
  std::map<std::string, std::string> kept;     // name → uncompressed bytes
};

// Splits "lib/modules/<release>/<rest>" (also under usr/).
bool module_path(std::string_view path, std::string_view* release, std::string_view* rest) {
  if (path.starts_with("usr/")) path.remove_prefix(4);
  if (!path.starts_with("lib/modules/")) return false;
  path.remove_prefix(12);
  size_t slash = path.find('/');
  if (slash == std::string_view::npos) return false;
  *release = path.substr(0, slash);
  *rest = path.substr(slash + 1);
  return true;
}

// One pass. `want` starts as the names whose bytes to keep; the first pass
// also adds the dependencies of every kept module as it learns them.
// `on_vmlinuz` is called as soon as the kernel image has been read.
void scan_package(const fs::path& deb, Scan& scan, std::unordered_set<std::string>& want, bool learn,
                  const std::function<void(const Scan&)>& on_vmlinuz) {
  bool seen_vmlinuz = false;
  DebReader reader(deb);
  while (std::optional<DebReader::Entry> e = reader.next()) {
    if (!e->regular) continue;
    std::string_view path = e->path;
    std::string_view release, rest;
    if (path.starts_with("boot/vmlinuz-")) {
      if (!learn) continue;
      if (seen_vmlinuz) fail("{} holds more than one boot/vmlinuz-*", deb.string());
      seen_vmlinuz = true;
      scan.release = path.substr(13);
      scan.vmlinuz = reader.read();
      on_vmlinuz(scan);
    } else if (path.starts_with("boot/config-")) {
      if (learn) scan.config = reader.read();
    } else if (module_path(path, &release, &rest)) {
      if (rest == "modules.builtin") {
        if (learn) scan.builtin_text = reader.read();
        continue;
      }
      std::string file_name(fs::path(rest).filename().string());
      if (!rest.starts_with("kernel/") || !is_module_file(file_name)) continue;
      std::string guess = module_name_from_file(file_name);
      if (!learn && !want.contains(guess)) continue;
      std::string bytes = decompress_if_compressed(reader.read(), e->path);
      ModInfo info = parse_modinfo(bytes, e->path);
      if (learn) {
        // The flattened file name drops any compression suffix.
        std::string flat = file_name.substr(0, file_name.find(".ko") + 3);
        scan.modules[info.name] = FoundModule{flat, info.depends};
      }
      if (want.contains(info.name)) {
        if (learn) want.insert(info.depends.begin(), info.depends.end());
        scan.kept[info.name] = std::move(bytes);
      }
    }
  }
}

// Decompresses vmlinuz into `path` on its own thread, overlapping with the
// scan of the modules (both are CPU-bound xz decoding).
class VmlinuxWriter {
 public:
  void start(const Scan& scan, fs::path path, const Progress& progress) {
    std::optional<BzImagePayload> payload = find_payload(scan.vmlinuz);
    progress(fmt::format("extracting vmlinux ({}) from vmlinuz-{}",
                         payload && payload->size ? format_mib(*payload->size) : std::string("size unknown"),
                         scan.release));
    // Copies: the scan goes on changing `scan` while the thread runs.
    vmlinuz_ = scan.vmlinuz;
    release_ = scan.release;
    path_ = std::move(path);
    thread_ = std::jthread([this] {
      try {
        UniqueFd fd(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!fd) fail_errno("cannot create {}", path_.string());
        extract_vmlinux(
            vmlinuz_, [&](std::string_view chunk) { write_all(fd.get(), chunk, path_.c_str()); },
            "vmlinuz-" + release_);
      } catch (...) {
        error_ = std::current_exception();
      }
    });
  }
  // Waits for the thread; rethrows its failure. Returns whether it ran.
  bool finish() {
    if (!thread_.joinable()) return false;
    thread_.join();
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  std::string vmlinuz_;
  std::string release_;
  fs::path path_;
  std::exception_ptr error_;
  std::jthread thread_;  // last: joined before the members above go away
};

// The modules to cache, in load order: the closure of default_modules() and
// of whichever optional modules this kernel has.
std::vector<std::string> modules_to_cache(const Scan& scan, const std::unordered_set<std::string>& builtin,
                                          const std::string& what) {
  std::vector<std::string> wanted = default_modules();
  for (const std::string& name : optional_modules())
    if (scan.modules.contains(name)) wanted.push_back(name);
  ModuleLookup lookup;
  lookup.depends = [&](const std::string& name) -> const std::vector<std::string>* {
    auto it = scan.modules.find(name);
    return it == scan.modules.end() ? nullptr : &it->second.depends;
  };
  lookup.builtin = &builtin;
  lookup.where = "in " + what;
  return load_order(wanted, lookup);
}

void write_file(const fs::path& path, std::string_view data, mode_t mode = 0644) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (!fd) fail_errno("cannot create {}", path.string());
  write_all(fd.get(), data, path.c_str());
}

}  // namespace

Kernel fetch_debian_kernel(const Progress& progress, bool force) {
  auto start = Clock::now();
  AptPackage package = resolve_package();
  progress(fmt::format("resolving {} → {}{}", kMetaPackage, package.name,
                       package.version.empty() ? "" : " " + package.version));
  std::string release = package.name.substr(kImagePrefix.size());
  fs::path kernels = kernels_dir();
  fs::path final_dir = kernels / release;

  LockFile lock = LockFile::try_lock(kernels / ".lock");
  if (!lock.locked()) {
    progress("waiting for another `kestrel kernel fetch` to finish");
    lock = LockFile::lock(kernels / ".lock", Deadline::after(std::chrono::minutes(60)));
    if (!lock.locked()) fail("another `kestrel kernel fetch` holds {} for over an hour", (kernels / ".lock").string());
  }
  if (!force) {
    if (std::optional<KernelRecord> record = read_kernel_record(final_dir)) {
      progress(fmt::format("{} is already cached in {}", package.name, final_dir.string()));
      return cached_kernel(final_dir, *record);
    }
  }
  // Leftovers of fetches that died (we hold the lock, so none is running).
  for (const fs::directory_entry& e : fs::directory_iterator(kernels)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(".tmp-") || name.starts_with(".download-") || name.starts_with(".old-")) remove_tree(e.path());
  }

  TempDir download_dir(kernels, ".download-");
  progress(fmt::format("downloading {}{} with apt-get", package.name,
                       package.size ? " (" + format_mib(package.size) + ")" : ""));
  auto download_start = Clock::now();
  fs::path deb = download(package, download_dir.path());
  uint64_t deb_size = fs::file_size(deb);
  progress(fmt::format("downloaded {} ({}) in {:.1f} s", deb.filename().string(), format_mib(deb_size),
                       seconds_since(download_start)));

  TempDir staged(kernels, ".tmp-" + release + "-");
  make_dirs(staged.path() / "modules");
  auto extract_start = Clock::now();
  Scan scan;
  std::unordered_set<std::string> want(default_modules().begin(), default_modules().end());
  want.insert(optional_modules().begin(), optional_modules().end());
  want.insert(kKnownDependencies.begin(), kKnownDependencies.end());
  VmlinuxWriter vmlinux;
  scan_package(deb, scan, want, /*learn=*/true,
               [&](const Scan& s) { vmlinux.start(s, staged.path() / "vmlinux", progress); });
  if (!vmlinux.finish()) fail("{} holds no boot/vmlinuz-*", deb.string());
  if (scan.release != release)
    fail("{} holds the kernel {}, expected {}", deb.filename().string(), scan.release, release);
  if (!scan.builtin_text)
    progress(fmt::format("note: {} has no modules.builtin; assuming nothing is built in", deb.filename().string()));
  std::unordered_set<std::string> builtin = parse_modules_builtin(scan.builtin_text.value_or(""));

  std::vector<std::string> order = modules_to_cache(scan, builtin, deb.filename().string());
  std::unordered_set<std::string> missing;
  for (const std::string& name : order)
    if (!scan.kept.contains(name)) missing.insert(name);
  if (!missing.empty()) {
    progress(fmt::format("reading the package again for {} module(s) it lists early", missing.size()));
    scan_package(deb, scan, missing, /*learn=*/false, [](const Scan&) {});
    for (const std::string& name : order)
      if (!scan.kept.contains(name)) fail("{}: module {} vanished on the second read", deb.string(), name);
  }
  progress(fmt::format("modules: {} ({})", fmt::join(order, " "), order.size()));

  KernelRecord record;
  record.release = release;
  record.package = package.name;
  record.version = package.version;
  record.deb = deb.filename().string();
  for (const std::string& name : order) {
    const FoundModule& m = scan.modules.at(name);
    write_file(staged.path() / "modules" / m.file, scan.kept.at(name));
    record.modules.push_back({name, m.file, m.depends});
  }
  if (scan.builtin_text) write_file(staged.path() / "modules" / "modules.builtin", *scan.builtin_text);
  if (!scan.config.empty()) write_file(staged.path() / "config", scan.config);

  {
    MappedFile image(staged.path() / "vmlinux");
    record.pvh = elf::has_pvh_note(image.bytes(), "vmlinux-" + release);
  }
  if (!record.pvh) {
    // QEMU can boot an ELF kernel only through its PVH entry: keep the bzImage.
    progress("note: this vmlinux has no Xen PVH entry; kestrel will boot vmlinuz (slower)");
    write_file(staged.path() / "vmlinuz", scan.vmlinuz);
    fs::remove(staged.path() / "vmlinux");
    record.image = "vmlinuz";
  }
  write_file(staged.path() / "kernel.json", kernel_record_json(record));
  double extract_seconds = seconds_since(extract_start);

  install_kernel_dir(staged, final_dir);
  progress(fmt::format("cached in {} (extracted in {:.1f} s, {:.1f} s in all)", final_dir.string(), extract_seconds,
                       seconds_since(start)));
  return cached_kernel(final_dir, record);
}

}  // namespace kestrel::assets

// `kestrel kernel build`: see assets/kernel_build.hpp and docs/kernels.md.
#include "assets/kernel_build.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sched.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <unordered_set>

#include "assets/apt.hpp"
#include "assets/archive.hpp"
#include "assets/command.hpp"
#include "assets/deb.hpp"
#include "assets/elf.hpp"
#include "assets/initramfs.hpp"
#include "assets/kernel_store.hpp"
#include "assets/mapped_file.hpp"
#include "assets/modinfo.hpp"
#include "assets/vmlinux.hpp"
#include "util/allocation.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"
#include "util/sha256.hpp"
#include "util/signals.hpp"
#include "util/strings.hpp"

namespace kestrel::assets {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Part of the key: bump it when the steps below change what they build (the
// base config, the make targets, what is installed).
constexpr std::string_view kRecipe = "kestrel-lean-1";

// What the unpacked tree and the objects of a build take, with room to spare
// (measured: 1.2 GB of sources without other architectures, ~0.3 GB of objects).
constexpr uint64_t kSpaceNeeded = 3ull << 30;

std::string duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  int s = static_cast<int>(seconds + 0.5);
  return fmt::format("{} min {:02} s", s / 60, s % 60);
}

// Throws Interrupted if a signal is pending on the signalfd.
void check_signals(int signal_fd) {
  if (signal_fd >= 0) sleep_or_throw(signal_fd, 0, SIGWINCH);
}

// ---- the host's tools -----------------------------------------------------

// What the kernel's build runs, and the Debian package that has it.
struct Tool {
  const char* command;
  const char* package;
};
// (perl, which it also runs, is Essential on Debian: always there.)
constexpr Tool kTools[] = {{"make", "make"},   {"gcc", "gcc"},   {"ld", "binutils"}, {"objcopy", "binutils"},
                           {"bison", "bison"}, {"flex", "flex"}, {"bc", "bc"},       {"apt-get", "apt"}};

void check_tools() {
  std::set<std::string> packages;
  std::vector<std::string> missing;
  for (const Tool& t : kTools) {
    if (find_in_path(t.command)) continue;
    missing.push_back(t.command);
    packages.insert(t.package);
  }
  // objtool (x86_64's stack and section checks) is built against libelf.
  std::error_code ec;
  if (!fs::exists("/usr/include/libelf.h", ec) && !fs::exists("/usr/include/gelf.h", ec)) {
    missing.push_back("libelf.h");
    packages.insert("libelf-dev");
  }
  if (missing.empty()) return;
  fail(
      "building a kernel needs {}, which this host lacks; install them with `apt-get install {}` "
      "(as root), or use Debian's kernel (`kestrel kernel fetch`)",
      join(missing, ", "), join(std::vector<std::string>(packages.begin(), packages.end()), " "));
}

// The first line of `gcc --version`: the compiler is part of the key.
std::string compiler_identity() {
  std::vector<std::string> argv = {"gcc", "--version"};
  CommandResult r = run_command(argv, {}, Deadline::after(std::chrono::seconds(30)));
  if (r.status != 0) fail("cannot ask the compiler its version: {}", command_failure(argv, r));
  std::string_view first = r.out;
  first = trim(first.substr(0, first.find('\n')));
  if (first.empty()) fail("`gcc --version` printed nothing");
  return std::string(first);
}

void check_space(const fs::path& dir) {
  struct statvfs st;
  if (::statvfs(dir.c_str(), &st) != 0) fail_errno("cannot check the free space in {}", dir.string());
  uint64_t free = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (free < kSpaceNeeded)
    fail("building a kernel takes about {} in {} while it runs; only {} is free", format_mib(kSpaceNeeded),
         dir.string(), format_mib(free));
}

// ---- the lock of one key ------------------------------------------------

LockFile lock_key(const fs::path& path, const LeanBuildOptions& o) {
  LockFile lock = LockFile::try_lock(path);
  if (lock.locked()) return lock;
  if (o.progress) o.progress("waiting for another `kestrel kernel build` of this kernel to finish");
  Deadline deadline = Deadline::after(std::chrono::hours(3));
  while (!deadline.expired()) {
    if (o.signal_fd >= 0)
      sleep_or_throw(o.signal_fd, 500, SIGWINCH);
    else
      ::usleep(500 * 1000);
    lock = LockFile::try_lock(path);
    if (lock.locked()) return lock;
  }
  fail("another `kestrel kernel build` has held {} for over 3 hours", path.string());
}

// ---- unpack ---------------------------------------------------------------

// Whether a path of the source tree (without its top directory) is needed to
// build an x86_64 vmlinux. Other architectures, the documentation and the
// test and perf tools are not (but their Kconfig files): about a fifth of the
// tree.
bool wanted_source(std::string_view path) {
  // Kconfig files stay wherever they are: Kconfig reads some of every
  // architecture's (crypto/Kconfig sources arch/*/crypto/Kconfig).
  if (path.substr(path.rfind('/') + 1).starts_with("Kconfig")) return true;
  if (path.starts_with("arch/")) {
    std::string_view rest = path.substr(5);
    size_t slash = rest.find('/');
    return slash == std::string_view::npos || rest.substr(0, slash) == "x86";
  }
  if (path.starts_with("Documentation/")) return false;
  if (path.starts_with("tools/testing/") || path.starts_with("tools/perf/")) return false;
  return true;
}

// Extracts the source tarball (linux-source-6.1/… inside) into `dest`.
// Returns how many files it wrote.
size_t unpack_sources(const std::string& tarball, const fs::path& dest, const std::string& what, int signal_fd) {
  ReadArchive in = new_read_archive();
  archive_read_support_format_tar(in.get());
  archive_read_support_filter_all(in.get());
  if (archive_read_open_memory(in.get(), tarball.data(), tarball.size()) != ARCHIVE_OK)
    fail_archive(in.get(), fmt::format("cannot read {}", what));
  // Paths are made absolute below (under dest), so ".." and links on the
  // way are what keeps an entry inside it.
  WriteArchive out(archive_write_disk_new());
  if (!out) fail("cannot create a libarchive writer: out of memory");
  archive_write_disk_set_options(out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM |
                                                ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS);
  size_t files = 0;
  for (size_t n = 0;; ++n) {
    if (n % 512 == 0) check_signals(signal_fd);
    archive_entry* entry = nullptr;
    int r = archive_read_next_header(in.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) fail_archive(in.get(), fmt::format("cannot read {}", what));
    std::string_view path = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    while (path.starts_with("./")) path.remove_prefix(2);
    size_t slash = path.find('/');
    if (slash == std::string_view::npos) continue;  // the top directory itself
    // A copy: the entry's own name is replaced below.
    std::string inner(path.substr(slash + 1));
    if (inner.empty() || !wanted_source(inner)) continue;
    // Hard links name their target by its path in the archive, too.
    if (const char* link = archive_entry_hardlink(entry)) {
      std::string_view target = link;
      while (target.starts_with("./")) target.remove_prefix(2);
      size_t s = target.find('/');
      if (s == std::string_view::npos || !wanted_source(target.substr(s + 1))) continue;
      archive_entry_copy_hardlink(entry, (dest / target.substr(s + 1)).c_str());
    }
    archive_entry_copy_pathname(entry, (dest / inner).c_str());
    r = archive_write_header(out.get(), entry);
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
      fail_archive(out.get(), fmt::format("cannot write {}", (dest / inner).string()));
    if (archive_entry_size(entry) > 0) {
      for (;;) {
        const void* block = nullptr;
        size_t size = 0;
        la_int64_t offset = 0;
        r = archive_read_data_block(in.get(), &block, &size, &offset);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK) fail_archive(in.get(), fmt::format("cannot read {}", what));
        if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK)
          fail_archive(out.get(), fmt::format("cannot write {}", (dest / inner).string()));
      }
    }
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK)
      fail_archive(out.get(), fmt::format("cannot write {}", (dest / inner).string()));
    ++files;
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK)
    fail_archive(out.get(), fmt::format("cannot finish {}", dest.string()));
  return files;
}

// ---- make -----------------------------------------------------------------

struct Build {
  fs::path src;  // the unpacked tree
  fs::path log;  // every command's output
  int signal_fd = -1;
  std::vector<std::string> env;
};

// Runs a step of the build; throws with its last lines if it fails.
void run_step(const Build& b, const std::vector<std::string>& argv,
              const std::function<void(const std::string&)>& on_line = {}) {
  StreamedCommand c;
  c.argv = argv;
  c.cwd = b.src;
  c.env = b.env;
  c.log = b.log;
  c.on_line = on_line;
  c.signal_fd = b.signal_fd;
  c.deadline = Deadline::after(std::chrono::hours(4));
  StreamedResult r = run_streamed(c);
  if (r.status != 0)
    fail("`{}` failed (status {}) in {}; its last lines:\n{}", shell_join(argv), r.status, b.src.string(),
         r.tail_text(15));
}

// Copies `from` to `to`; for the build log, kept when a build fails.
void copy_file_to(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) fail("cannot copy {} to {}: {}", from.string(), to.string(), ec.message());
}

}  // namespace

// ---- the fragment and the key ---------------------------------------------

std::vector<KconfigOption> parse_kconfig(std::string_view text, std::string_view what) {
  std::vector<KconfigOption> options;
  std::map<std::string, std::pair<std::string, size_t>> seen;  // name → value, line
  size_t line_no = 0;
  for (const std::string& raw : split(text, '\n')) {
    ++line_no;
    std::string_view line = trim(raw);
    KconfigOption o;
    if (line.starts_with("# CONFIG_") && line.ends_with(" is not set")) {
      o.name = line.substr(9, line.size() - 9 - 11);
      o.value = "n";
    } else if (line.starts_with("CONFIG_")) {
      size_t eq = line.find('=');
      if (eq == std::string_view::npos || eq == 7)
        fail("{}:{}: `{}` is not an option (CONFIG_NAME=value or # CONFIG_NAME is not set)", what, line_no, line);
      o.name = line.substr(7, eq - 7);
      o.value = line.substr(eq + 1);
      if (o.value.empty()) fail("{}:{}: CONFIG_{} has no value", what, line_no, o.name);
    } else {
      continue;
    }
    if (o.name.find_first_of(" \t") != std::string::npos) fail("{}:{}: `{}` is not an option", what, line_no, line);
    auto [it, inserted] = seen.try_emplace(o.name, o.value, line_no);
    if (!inserted) {
      if (it->second.first != o.value)
        fail("{}:{}: CONFIG_{} is {} here but {} on line {}", what, line_no, o.name, o.value, it->second.first,
             it->second.second);
      continue;
    }
    options.push_back(std::move(o));
  }
  return options;
}

std::map<std::string, std::string> kconfig_map(const std::vector<KconfigOption>& options) {
  std::map<std::string, std::string> out;
  for (const KconfigOption& o : options) out[o.name] = o.value;
  return out;
}

std::vector<std::string> unmet_options(const std::vector<KconfigOption>& fragment,
                                       const std::map<std::string, std::string>& config) {
  std::vector<std::string> out;
  auto shown = [](const std::string& value) { return value == "n" ? std::string("not set") : value; };
  for (const KconfigOption& o : fragment) {
    auto it = config.find(o.name);
    std::string got = it == config.end() ? "n" : it->second;
    if (got == o.value) continue;
    std::string wanted =
        o.value == "n" ? fmt::format("# CONFIG_{} is not set", o.name) : fmt::format("CONFIG_{}={}", o.name, o.value);
    out.push_back(fmt::format("{} (the build has: {})", wanted, shown(got)));
  }
  return out;
}

std::string lean_key(std::string_view source_version, std::string_view compiler,
                     const std::vector<KconfigOption>& fragment) {
  Sha256 h;
  auto field = [&](std::string_view name, std::string_view value) {
    h.update(fmt::format("{}\n{}\n", name, value.size()));
    h.update(value);
  };
  field("recipe", kRecipe);
  field("source", fmt::format("{} {}", kLeanSourcePackage, source_version));
  field("compiler", compiler);
  for (const auto& [name, value] : kconfig_map(fragment)) field("CONFIG_" + name, value);
  return h.hex_digest();
}

std::string lean_release(std::string_view source_version, std::string_view key) {
  std::string_view v = source_version;
  if (size_t colon = v.find(':'); colon != std::string_view::npos) v.remove_prefix(colon + 1);
  v = v.substr(0, v.find('-'));
  return fmt::format("{}-lean-{}", v, key.substr(0, 8));
}

// ---- the build -----------------------------------------------------------

Kernel build_lean_kernel(const LeanBuildOptions& o) {
  auto started = Clock::now();
  Progress say = o.progress ? o.progress : [](const std::string&) {};
  check_tools();
  std::vector<KconfigOption> fragment = parse_kconfig(lean_fragment(), "kernel/lean.config");
  AptPackage source = apt_candidate(std::string(kLeanSourcePackage));
  if (source.version.empty())
    fail(
        "apt knows no {} (the kernel sources of Debian 12); run `apt-get update` as root, or use "
        "Debian's kernel (`kestrel kernel fetch`)",
        kLeanSourcePackage);
  std::string compiler = compiler_identity();
  std::string key = lean_key(source.version, compiler, fragment);
  std::string release = lean_release(source.version, key);
  std::string local_version = release.substr(release.find("-lean-"));
  int jobs = o.jobs > 0 ? o.jobs : current_allocation().cpus;

  fs::path kernels = kernels_dir();
  fs::path final_dir = kernels / release;
  std::string key16 = key.substr(0, 16);
  fs::path lock_path = lean_build_lock(kernels, key16);
  LockFile lock = lock_key(lock_path, o);
  // The lock file goes when this build is done, whatever the outcome (after
  // the build tree: declared before `work`, so destroyed after it).
  struct RemoveLock {
    LockFile& lock;
    const fs::path& path;
    ~RemoveLock() {
      try {
        lock.remove_locked(path);
      } catch (const Error&) {
        // Left behind: the next build or `kestrel cache clear` removes it.
      }
    }
  } remove_lock{lock, lock_path};
  // Trees of builds that died, and lock files nobody holds.
  sweep_kernel_builds(key16);
  if (!o.force) {
    if (std::optional<KernelRecord> record = read_kernel_record(final_dir);
        record && record->kind == "lean" && record->key == key) {
      say(fmt::format("{} is already built: {} (`--force` builds it again)", release, final_dir.string()));
      return cached_kernel(final_dir, *record);
    }
  }
  check_space(kernels);
  say(fmt::format("building {} from {} {} with {}, {} job{}", release, kLeanSourcePackage, source.version, compiler,
                  jobs, jobs == 1 ? "" : "s"));

  TempDir work(kernels, ".build-lean-" + key16 + "-");
  Build b;
  b.src = work.path() / "src";
  b.log = work.path() / "build.log";
  b.signal_fd = o.signal_fd;
  b.env = c_locale_environment();
  // The banner (`uname -v`, /proc/version) names no user or host of ours.
  b.env.push_back("KBUILD_BUILD_USER=kestrel");
  b.env.push_back("KBUILD_BUILD_HOST=kestrel");
  // A failed build keeps its log beside the kernels, for the error message.
  fs::path kept_log = kernels / ("lean-build-" + key.substr(0, 8) + ".log");
  auto keep_log = [&] {
    std::error_code ec;
    if (fs::exists(b.log, ec)) copy_file_to(b.log, kept_log);
  };

  try {
    // 1. download
    auto t = Clock::now();
    say(fmt::format("[1/5] download: {} {}{} with apt-get", kLeanSourcePackage, source.version,
                    source.size ? " (" + format_mib(source.size) + ")" : ""));
    fs::path downloads = work.path() / "download";
    make_dirs(downloads);
    {
      StreamedCommand c;
      c.argv = {"apt-get", "download", fmt::format("{}={}", kLeanSourcePackage, source.version)};
      c.cwd = downloads;
      c.log = b.log;
      c.signal_fd = o.signal_fd;
      c.deadline = Deadline::after(std::chrono::minutes(60));
      StreamedResult r = run_streamed(c);
      if (r.status != 0) {
        std::string lines;
        for (const std::string& line : r.tail)
          if (line.find("unsandboxed as root") == std::string::npos && !trim(line).empty()) lines += "\n  " + line;
        fail("cannot download {}: `{}` exited with status {}{}\n{}", kLeanSourcePackage, shell_join(c.argv), r.status,
             lines, kAptStaleHint);
      }
    }
    fs::path deb = downloaded_deb(downloads, std::string(kLeanSourcePackage));
    uint64_t deb_size = fs::file_size(deb);
    std::string deb_name = deb.filename().string();
    say(fmt::format("[1/5] download: {} ({}) in {}", deb_name, format_mib(deb_size), duration(seconds_since(t))));

    // 2. unpack
    t = Clock::now();
    say("[2/5] unpack: the kernel sources (x86 only)");
    std::string tarball;
    {
      DebReader reader(deb);
      while (std::optional<DebReader::Entry> e = reader.next()) {
        if (e->regular && e->path.starts_with("usr/src/linux-source-") && e->path.ends_with(".tar.xz")) {
          tarball = reader.read();
          break;
        }
      }
    }
    if (tarball.empty()) fail("{} holds no usr/src/linux-source-*.tar.xz", deb_name);
    fs::remove(deb);
    check_signals(o.signal_fd);
    make_dirs(b.src);
    size_t files = unpack_sources(tarball, b.src, deb_name, o.signal_fd);
    tarball = std::string();
    say(fmt::format("[2/5] unpack: {} files in {}", files, duration(seconds_since(t))));

    // 3. configure
    t = Clock::now();
    say(fmt::format("[3/5] configure: tinyconfig + kernel/lean.config ({} options)", fragment.size()));
    fs::path fragment_file = work.path() / "lean.config";
    write_file_atomic(fragment_file, lean_fragment());
    run_step(b, {"make", "ARCH=x86_64", "tinyconfig"});
    run_step(b, {"scripts/kconfig/merge_config.sh", "-m", ".config", fragment_file.string()});
    run_step(b, {"make", "ARCH=x86_64", "olddefconfig"});
    std::string config_text = read_file(b.src / ".config");
    std::vector<std::string> unmet =
        unmet_options(fragment, kconfig_map(parse_kconfig(config_text, (b.src / ".config").string())));
    if (!unmet.empty())
      fail(
          "{} option{} of kernel/lean.config did not survive `make olddefconfig` (a dependency is "
          "off, or the option is gone from this kernel):\n  {}",
          unmet.size(), unmet.size() == 1 ? "" : "s", join(unmet, "\n  "));
    say(fmt::format("[3/5] configure: all {} options kept, in {}", fragment.size(), duration(seconds_since(t))));

    // 4. compile
    t = Clock::now();
    say(fmt::format("[4/5] compile: make -j{} vmlinux (minutes; the log is {})", jobs, b.log.string()));
    size_t compiled = 0;
    auto last_report = Clock::now();
    run_step(b, {"make", "ARCH=x86_64", fmt::format("-j{}", jobs), "LOCALVERSION=" + local_version, "vmlinux"},
             [&](const std::string& line) {
               std::string_view l = trim(line);
               if (l.starts_with("CC ") || l.starts_with("AS ") || l.starts_with("HOSTCC ")) ++compiled;
               if (seconds_since(last_report) >= 15) {
                 last_report = Clock::now();
                 say(fmt::format("[4/5] compile: {} files compiled, {}", compiled, duration(seconds_since(t))));
               }
             });
    std::string built_release = std::string(trim(read_file(b.src / "include" / "config" / "kernel.release")));
    if (built_release != release)
      fail("the kernel built as {}, not {} (its Makefile's version differs from the package's)", built_release,
           release);
    say(fmt::format("[4/5] compile: {} files in {}", compiled, duration(seconds_since(t))));

    // 5. install
    t = Clock::now();
    // Staged inside the build tree: a `kestrel kernel fetch` removes the
    // cache's ".tmp-*" entries as its own leftovers.
    TempDir staged(work.path(), "install-");
    make_dirs(staged.path() / "modules");
    fs::path vmlinux = staged.path() / "vmlinux";
    run_step(b, {"objcopy", "--strip-all", (b.src / "vmlinux").string(), vmlinux.string()});
    {
      MappedFile image(vmlinux);
      if (!elf::has_pvh_note(image.bytes(), vmlinux.string()))
        fail("the built vmlinux has no Xen PVH note; is CONFIG_PVH=y in kernel/lean.config?");
      if (std::string banner = vmlinux_release(image.bytes()); banner != release)
        fail("the built vmlinux calls itself {}, not {}", banner, release);
    }
    // Everything kestrel's initramfs would load is built in: modules.builtin
    // says so to the module planner (assets/module_plan.cpp), which then
    // carries no module file.
    std::string builtin_text = read_file(b.src / "modules.builtin");
    std::unordered_set<std::string> builtin = parse_modules_builtin(builtin_text);
    std::vector<std::string> absent;
    for (const auto* list : {&default_modules(), &disk_modules(), &net_modules()})
      for (const std::string& m : *list)
        if (!builtin.contains(normalize_module_name(m))) absent.push_back(m);
    if (!absent.empty())
      fail("the lean kernel lacks {} (not in its modules.builtin); kernel/lean.config must build them in",
           join(absent, ", "));
    write_file_atomic(staged.path() / "modules" / "modules.builtin", builtin_text);
    write_file_atomic(staged.path() / "config", config_text);
    write_file_atomic(staged.path() / "lean.config", lean_fragment());
    copy_file_to(b.log, staged.path() / "build.log");

    KernelRecord record;
    record.release = release;
    record.kind = "lean";
    record.package = std::string(kLeanSourcePackage);
    record.version = source.version;
    record.deb = deb_name;
    record.pvh = true;
    record.key = key;
    record.compiler = compiler;
    record.built = unix_seconds();
    write_file_atomic(staged.path() / "kernel.json", kernel_record_json(record));
    install_kernel_dir(staged, final_dir);
    uint64_t image_size = fs::file_size(final_dir / "vmlinux");
    std::error_code ec;
    fs::remove(kept_log, ec);  // an earlier failure's
    say(fmt::format("[5/5] install: vmlinux {} (stripped), {} built-in modules, in {}", format_mib(image_size),
                    builtin.size(), duration(seconds_since(t))));
    // Tens of thousands of files: seconds on an idle disk, minutes on a busy one.
    t = Clock::now();
    remove_tree(work.keep());
    say(fmt::format("built {} in {} (its build tree removed in {}): {}", release, duration(seconds_since(started)),
                    duration(seconds_since(t)), final_dir.string()));
    return cached_kernel(final_dir, record);
  } catch (const Interrupted&) {
    throw;  // the build tree goes with `work`
  } catch (const Error& e) {
    try {
      keep_log();
    } catch (const Error&) {
      throw e;
    }
    std::error_code ec;
    if (!fs::exists(kept_log, ec)) throw;
    throw Error(fmt::format("{}\nthe build's whole log: {}", e.what(), kept_log.string()));
  }
}

}  // namespace kestrel::assets

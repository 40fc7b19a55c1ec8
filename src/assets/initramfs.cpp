// The initramfs: layout in docs/guest.md, cached by content hash in
// cache_dir()/initramfs/<sha256>.cpio.
#include "assets/initramfs.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "assets/cache.hpp"
#include "assets/command.hpp"
#include "assets/cpio.hpp"
#include "assets/elf.hpp"
#include "assets/file_stamp.hpp"
#include "assets/mapped_file.hpp"
#include "assets/modinfo.hpp"
#include "assets/module_plan.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/sha256.hpp"
#include "util/strings.hpp"

namespace kestrel::assets {

namespace {

namespace fs = std::filesystem;

// Part of the cache key: bump it whenever the layout written below changes.
// 2: lib/modules/load.disk. 3: lib/modules/load.net.
constexpr std::string_view kFormat = "kestrel-initramfs-3";

void check_static(std::string_view bytes, const fs::path& path, std::string_view role) {
  if (!elf::is_elf64(bytes)) fail("{} ({}) is not a 64-bit ELF executable", path.string(), role);
  if (elf::has_interpreter(bytes, path.string()))
    fail("{} ({}) is dynamically linked; the guest has no libraries, it must be static", path.string(), role);
}

// Feeds one named field into the key, length-prefixed so that no two
// different inputs can produce the same byte stream.
void hash_field(Sha256& h, std::string_view name, std::string_view data) {
  h.update(fmt::format("{}\n{}\n", name, data.size()));
  h.update(data);
}

std::vector<std::string> busybox_applets(const fs::path& busybox) {
  std::vector<std::string> argv = {busybox.string(), "--list"};
  CommandResult r = run_command(argv, {}, Deadline::after(std::chrono::seconds(30)));
  if (r.status != 0) fail("cannot list the applets of {}: {}", busybox.string(), command_failure(argv, r));
  std::set<std::string> applets;
  for (const std::string& line : split(r.out, '\n')) {
    std::string_view name = trim(line);
    if (name.empty() || name == "busybox" || name == "." || name == ".." || name.find('/') != std::string_view::npos)
      continue;
    applets.emplace(name);
  }
  if (applets.empty()) fail("{} --list printed no applets", busybox.string());
  return {applets.begin(), applets.end()};
}

struct Inputs {
  std::string agent;
  std::string busybox;
  std::vector<PlannedModule> modules;       // loaded at boot (load.order)
  std::vector<PlannedModule> disk_modules;  // loaded for a disk root (load.disk)
  std::vector<PlannedModule> net_modules;   // loaded for NICs (load.net)
  // Their bytes as stored (maybe compressed): modules, disk_modules, net_modules.
  std::vector<std::string> module_files;
};

// Writes the archive under a private temporary name and renames it to
// `path` unless someone else got there first (then returns an unlocked
// LockFile: use theirs). Returns a shared lock on the file now at `path`:
// taken on the temporary file, it marks a live builder's file as in use and
// follows the file through the rename.
LockFile write_cpio(const InitramfsInputs& in, const Inputs& data, const fs::path& path) {
  std::vector<std::string> applets = busybox_applets(in.busybox);

  // Concurrent builders each write their own temporary file, and readers
  // never see a part.
  std::string temp = (path.parent_path() / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  int raw_fd = ::mkstemp(temp.data());
  if (raw_fd < 0) fail_errno("cannot create a temporary file in {}", path.parent_path().string());
  struct Unlink {
    std::string path;
    ~Unlink() {
      if (!path.empty()) ::unlink(path.c_str());
    }
  } cleanup{temp};
  LockFile hold = LockFile::lock_fd(UniqueFd(raw_fd), LockFile::Mode::kShared, temp);

  CpioWriter cpio(hold.fd(), temp);
  for (const char* dir : {"bin", "dev", "lib", "lib/modules", "mnt", "proc", "run", "sys", "sysroot"})
    cpio.add_directory(dir, 0755);
  cpio.add_directory("tmp", 01777);
  // The kernel opens /dev/console for init's stdio before init runs, i.e.
  // before the agent can mount devtmpfs.
  cpio.add_char_device("dev/console", 5, 1, 0600);
  cpio.add_file("init", data.agent, 0755);
  cpio.add_file("bin/busybox", data.busybox, 0755);
  for (const std::string& applet : applets) cpio.add_symlink("bin/" + applet, "busybox");
  // A module both the disk and the network need is carried once, listed in both.
  std::set<std::string> carried;
  size_t i = 0;
  for (const auto& [list, modules] :
       {std::pair{"load.order", &data.modules}, std::pair{"load.disk", &data.disk_modules},
        std::pair{"load.net", &data.net_modules}}) {
    std::string names;
    for (const PlannedModule& m : *modules) {
      std::string file = m.name + ".ko";
      if (carried.insert(file).second)
        cpio.add_file("lib/modules/" + file, decompress_if_compressed(data.module_files[i], m.path.string()), 0644);
      ++i;
      names += file + "\n";
    }
    cpio.add_file(std::string("lib/modules/") + list, names, 0644);
  }
  cpio.finish();

  if (::fchmod(hold.fd(), 0644) != 0) fail_errno("cannot chmod {}", temp);
  // Never over an existing image: `cache clear` unlinks an image by name
  // once it holds its lock, which must still be the file it locked.
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    // EEXIST: another builder's is there. ENOENT: `cache clear` removed our
    // temporary file as abandoned before we locked it. Either way: try again.
    if (errno == EEXIST || errno == ENOENT) return LockFile();
    fail_errno("cannot rename {} to {}", temp, path.string());
  }
  cleanup.path.clear();
  return hold;
}

// Executable and not a directory.
bool is_executable_file(const fs::path& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

fs::path from_env(const char* var) {
  const char* value = std::getenv(var);
  if (!value || !*value) return {};
  fs::path path = fs::absolute(value);
  if (!is_executable_file(path)) fail("${} is {}, which is not an executable file", var, path.string());
  return path;
}

bool is_static_executable(const fs::path& path) {
  try {
    MappedFile file(path);  // only the headers are read
    return elf::is_elf64(file.bytes()) && !elf::has_interpreter(file.bytes(), path.string());
  } catch (const Error&) {
    return false;
  }
}

}  // namespace

const std::vector<std::string>& default_modules() {
  static const std::vector<std::string> modules = {"virtio_pci", "virtio_console", "9pnet_virtio",
                                                   "9p",         "overlay",        "virtio_rng"};
  return modules;
}

const std::vector<std::string>& disk_modules() {
  // ext4 finds its checksums through the crypto API ("crc32c"), which would
  // ask modprobe for crc32c_generic: there is no modprobe in the guest.
  static const std::vector<std::string> modules = {"virtio_blk", "ext4", "crc32c_generic"};
  return modules;
}

const std::vector<std::string>& net_modules() {
  // Debian's virtio_net needs net_failover and failover: the closure has them.
  // dummy: a VM without NICs routes into its dummy0 (`--network none`); the
  // agent loads it alone at boot (docs/guest.md, "Network").
  static const std::vector<std::string> modules = {"virtio_net", "dummy"};
  return modules;
}

namespace {

// A disk or network module this kernel lacks is remembered (cache_dir()/initramfs/plans/
// missing-<sha256>.json), so that runs do not look for it again: a lookup
// that fails parses every module in the tree. The note holds while the tree
// looks unchanged: its directory (a flat tree, like a cached kernel's, gets a
// new mtime when a file comes or goes), modules.builtin and modules.dep
// (which depmod rewrites when modules are installed in a /lib/modules tree).
fs::path missing_note(const fs::path& dir, const std::string& name) {
  std::string key = sha256_hex(fmt::format("kestrel-missing-module-1\n{}\n{}", dir.string(), name));
  return cache_dir() / "initramfs" / "plans" / ("missing-" + key + ".json");
}

nlohmann::json tree_stamps(const fs::path& dir) {
  return {{"dir", file_stamp(dir)},
          {"builtin", file_stamp(dir / "modules.builtin")},
          {"dep", file_stamp(dir / "modules.dep")}};
}

bool known_missing(const fs::path& dir, const std::string& name) {
  try {
    auto text = read_file_if_exists(missing_note(dir, name));
    if (!text) return false;
    nlohmann::json j = parse_json(*text);
    const nlohmann::json& was = j.at("stamps");
    return j.at("module") == name && same_stamp(was.at("dir"), dir) &&
           same_stamp(was.at("builtin"), dir / "modules.builtin") && same_stamp(was.at("dep"), dir / "modules.dep");
  } catch (const std::exception&) {
    return false;  // unreadable or damaged: look again
  }
}

void note_missing(const fs::path& dir, const std::string& name) {
  try {
    fs::path note = missing_note(dir, name);
    make_dirs(note.parent_path(), 0755);
    nlohmann::json j = {{"module", name}, {"dir", dir.string()}, {"stamps", tree_stamps(dir)}};
    write_file_atomic(note, dump_json(j) + "\n");
  } catch (const Error&) {
    // Only a shortcut for the next run.
  }
}

// The closure of `wanted` (the disk or the network modules) that `boot`
// lacks, in load order. A wanted module that cannot be planned (missing, or a
// dependency of it missing) is left out with all it alone needs: the agent
// reports it when it mounts a disk (or finds too few NICs).
std::vector<PlannedModule> plan_optional_modules(const fs::path& modules_dir, const std::vector<std::string>& wanted,
                                                 const std::vector<PlannedModule>& boot) {
  if (modules_dir.empty()) return {};  // everything is built in
  fs::path dir = fs::absolute(modules_dir).lexically_normal();
  std::vector<std::string> present;
  for (const std::string& name : wanted)
    if (!known_missing(dir, name)) present.push_back(name);
  if (present.empty()) return {};
  std::vector<PlannedModule> closure;
  try {
    closure = plan_modules(modules_dir, present);  // one cached plan, as a rule
  } catch (const Error&) {
    closure.clear();
    for (const std::string& name : present) {
      try {
        for (PlannedModule& m : plan_modules(modules_dir, {name})) closure.push_back(std::move(m));
      } catch (const Error&) {
        note_missing(dir, name);
      }
    }
  }
  std::set<std::string> have;
  for (const PlannedModule& m : boot) have.insert(m.name);
  std::vector<PlannedModule> out;
  for (PlannedModule& m : closure)
    if (have.insert(m.name).second) out.push_back(std::move(m));
  return out;
}

// The content hash costs reading and hashing every input (~6 MB) at every
// run; this remembers it per input identity (path, inode, size, mtime), so a
// run only stats the inputs. Any change of an input makes a new entry.
fs::path stamp_entry(const InitramfsInputs& in, const std::vector<PlannedModule>& modules,
                     const std::vector<PlannedModule>& disk, const std::vector<PlannedModule>& net) {
  nlohmann::json j = {{"format", kFormat},
                      {"agent", in.agent.string()},
                      {"agent_stamp", file_stamp(in.agent)},
                      {"busybox", in.busybox.string()},
                      {"busybox_stamp", file_stamp(in.busybox)}};
  for (const PlannedModule& m : modules) j["modules"].push_back({m.name, m.path.string(), file_stamp(m.path)});
  for (const PlannedModule& m : disk) j["disk_modules"].push_back({m.name, m.path.string(), file_stamp(m.path)});
  for (const PlannedModule& m : net) j["net_modules"].push_back({m.name, m.path.string(), file_stamp(m.path)});
  return cache_dir() / "initramfs" / "by-stamp" / (sha256_hex(dump_json(j)) + ".path");
}

}  // namespace

InitramfsInUse use_initramfs(const InitramfsInputs& in) {
  // Removers (cache clear) hold an image's lock only to unlink it.
  auto wait = [] { return Deadline::after(std::chrono::seconds(2)); };
  std::vector<PlannedModule> planned = plan_modules(in.kernel.modules_dir, in.modules);
  std::vector<PlannedModule> disk = plan_optional_modules(in.kernel.modules_dir, in.disk_modules, planned);
  std::vector<PlannedModule> net = plan_optional_modules(in.kernel.modules_dir, in.net_modules, planned);
  fs::path entry = stamp_entry(in, planned, disk, net);
  if (auto known = read_file_if_exists(entry)) {
    fs::path path = *known;
    if (LockFile hold = LockFile::lock_existing(path, wait(), LockFile::Mode::kShared); hold.locked())
      return {path, std::move(hold)};
  }

  Inputs data;
  data.agent = read_file(in.agent);
  check_static(data.agent, in.agent, "kestrel-agent");
  data.busybox = read_file(in.busybox);
  check_static(data.busybox, in.busybox, "busybox");
  data.modules = std::move(planned);
  data.disk_modules = std::move(disk);
  data.net_modules = std::move(net);

  // The key covers every byte that goes into the archive. The applet list is
  // not hashed separately: it is a function of the busybox bytes.
  Sha256 key;
  key.update(kFormat);
  hash_field(key, "agent", data.agent);
  hash_field(key, "busybox", data.busybox);
  for (const PlannedModule& m : data.modules) {
    data.module_files.push_back(read_file(m.path));
    hash_field(key, "module " + m.name, data.module_files.back());
  }
  for (const PlannedModule& m : data.disk_modules) {
    data.module_files.push_back(read_file(m.path));
    hash_field(key, "disk module " + m.name, data.module_files.back());
  }
  for (const PlannedModule& m : data.net_modules) {
    data.module_files.push_back(read_file(m.path));
    hash_field(key, "net module " + m.name, data.module_files.back());
  }
  fs::path dir = cache_dir() / "initramfs";
  fs::path path = dir / (key.hex_digest() + ".cpio");
  LockFile hold;
  // Another builder's image, ours, or (removed by `cache clear` in between) ours after all.
  for (int attempt = 0; attempt < 3 && !hold.locked(); ++attempt) {
    hold = LockFile::lock_existing(path, wait(), LockFile::Mode::kShared);
    if (hold.locked()) break;
    make_dirs(dir, 0755);
    hold = write_cpio(in, data, path);
  }
  if (!hold.locked()) fail("cannot keep the initramfs {}: it was removed again and again", path.string());
  try {
    make_dirs(entry.parent_path(), 0755);
    write_file_atomic(entry, path.string());
  } catch (const Error&) {
    // Only a shortcut for the next run (e.g. `cache clear` removed its directory).
  }
  return {path, std::move(hold)};
}

fs::path ensure_initramfs(const InitramfsInputs& in) { return use_initramfs(in).path; }

ClearedFiles clear_initramfs_cache() {
  ClearedFiles out;
  fs::path dir = cache_dir() / "initramfs";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    // Images (<sha256>.cpio) and builders' temporary files: each is held
    // (shared) by whoever uses or writes it.
    LockFile lock =
        LockFile::lock_existing(e.path(), Deadline::after(std::chrono::milliseconds(0)), LockFile::Mode::kExclusive);
    if (!lock.locked()) {
      if (fs::exists(e.path(), ec)) ++out.in_use;
      continue;
    }
    if (::unlink(e.path().c_str()) != 0 && errno != ENOENT) fail_errno("cannot remove {}", e.path().string());
    ++out.removed;
  }
  // The remembered names of images now gone.
  for (const auto& e : fs::directory_iterator(dir / "by-stamp", ec)) {
    auto target = read_file_if_exists(e.path());
    if (!target || !fs::exists(*target, ec)) ::unlink(e.path().c_str());
  }
  return out;
}

namespace {

// The directory of the shared object this code was loaded from
// (libkestrel.so, in a program using the C++ API: docs/api.md), resolved; ""
// when it is part of the main program (the kestrel command).
fs::path shared_object_dir() {
  static const char marker = 0;
  Dl_info info{};
  link_map* map = nullptr;
  if (::dladdr1(&marker, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) == 0 || map == nullptr ||
      map->l_name == nullptr || map->l_name[0] == '\0')
    return {};
  std::error_code ec;
  fs::path path = fs::canonical(map->l_name, ec);
  if (ec) return {};
  return path.parent_path();
}

}  // namespace

std::vector<fs::path> agent_candidates(const fs::path& library_dir, const fs::path& exe_dir) {
  std::vector<fs::path> candidates;
  if (!library_dir.empty()) {
    candidates.push_back(library_dir / "kestrel-agent");  // build tree: build/src/libkestrel.so
    candidates.push_back(library_dir / ".." / "libexec" / "kestrel" / "kestrel-agent");  // <prefix>/lib
    // A multiarch libdir: <prefix>/lib/x86_64-linux-gnu.
    if (library_dir.parent_path().filename().string().starts_with("lib"))
      candidates.push_back(library_dir / ".." / ".." / "libexec" / "kestrel" / "kestrel-agent");
  }
  if (!exe_dir.empty()) {
    candidates.push_back(exe_dir / "kestrel-agent");                                 // build tree: build/src/
    candidates.push_back(exe_dir / ".." / "src" / "kestrel-agent");                  // tests in build/tests/
    candidates.push_back(exe_dir / ".." / "libexec" / "kestrel" / "kestrel-agent");  // installed: <prefix>/bin/
  }
  candidates.push_back("/usr/local/libexec/kestrel/kestrel-agent");
  candidates.push_back("/usr/libexec/kestrel/kestrel-agent");
  for (fs::path& candidate : candidates) candidate = candidate.lexically_normal();
  return candidates;
}

fs::path find_agent() {
  if (fs::path path = from_env("KESTREL_AGENT"); !path.empty()) return path;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::string looked;
  for (const fs::path& path : agent_candidates(shared_object_dir(), ec ? fs::path() : exe.parent_path())) {
    if (is_executable_file(path)) return path;
    looked += (looked.empty() ? "" : ", ") + path.string();
  }
  fail("cannot find kestrel-agent (looked at {}); build it, or set KESTREL_AGENT", looked);
}

fs::path find_busybox() {
  if (fs::path path = from_env("KESTREL_BUSYBOX"); !path.empty()) {
    if (!is_static_executable(path)) fail("$KESTREL_BUSYBOX is {}, which is not a static executable", path.string());
    return path;
  }
  std::string found_dynamic;
  for (const char* candidate : {"/bin/busybox", "/usr/bin/busybox"}) {
    if (!is_executable_file(candidate)) continue;
    if (is_static_executable(candidate)) return candidate;
    found_dynamic = candidate;
  }
  if (!found_dynamic.empty())
    fail(
        "{} is dynamically linked and cannot run in the guest; run `apt-get install busybox-static` "
        "or set KESTREL_BUSYBOX to a static busybox",
        found_dynamic);
  fail("no busybox found; run `apt-get install busybox-static` or set KESTREL_BUSYBOX to a static busybox");
}

}  // namespace kestrel::assets

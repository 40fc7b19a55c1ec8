#include "assets/kernel_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "assets/cache.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/lockfile.hpp"
#include "util/random.hpp"
#include "util/strings.hpp"

namespace kestrel::assets {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path kernels_dir() {
  fs::path dir = cache_dir() / "kernels";
  make_dirs(dir, 0755);
  return dir;
}

std::string kernel_record_json(const KernelRecord& record) {
  json modules = json::array();
  for (const KernelRecord::Module& m : record.modules)
    modules.push_back({{"name", m.name}, {"file", m.file}, {"depends", m.depends}});
  json j = {{"format", kKernelRecordFormat}, {"release", record.release}, {"kind", record.kind},
            {"package", record.package},     {"version", record.version}, {"deb", record.deb},
            {"image", record.image},         {"pvh", record.pvh},         {"modules", modules}};
  if (record.kind == "lean") {
    j["key"] = record.key;
    j["compiler"] = record.compiler;
    j["built"] = record.built;
  }
  return dump_json(j, 2) + "\n";
}

std::optional<KernelRecord> read_kernel_record(const fs::path& dir) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(dir / "kernel.json");
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!text) return std::nullopt;
  try {
    json j = parse_json(*text);
    if (j.at("format").get<int>() != kKernelRecordFormat) return std::nullopt;
    KernelRecord r;
    r.release = j.at("release").get<std::string>();
    r.kind = j.value("kind", "debian");
    r.package = j.value("package", "");
    r.version = j.value("version", "");
    r.deb = j.value("deb", "");
    r.image = j.value("image", "vmlinux");
    r.pvh = j.value("pvh", false);
    if (r.image.empty() || r.image.find('/') != std::string::npos) return std::nullopt;
    for (const json& m : j.value("modules", json::array()))
      r.modules.push_back({m.at("name").get<std::string>(), m.at("file").get<std::string>(),
                           m.value("depends", std::vector<std::string>{})});
    r.key = j.value("key", "");
    r.compiler = j.value("compiler", "");
    r.built = j.value("built", int64_t{0});
    if (r.release.empty() || (r.kind != "debian" && r.kind != "lean")) return std::nullopt;
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Kernel cached_kernel(const fs::path& dir, const KernelRecord& record) {
  Kernel k;
  k.release = record.release;
  k.image = dir / record.image;
  k.pvh = record.pvh;
  k.modules_dir = dir / "modules";
  k.lean = record.kind == "lean";
  k.source = (k.lean ? "lean:" : "debian:") + record.deb;
  return k;
}

void install_kernel_dir(TempDir& staged, const fs::path& final_dir) {
  if (::chmod(staged.path().c_str(), 0755) != 0) fail_errno("cannot chmod {}", staged.path().string());
  std::error_code ec;
  fs::path old;
  if (fs::exists(final_dir, ec)) {
    old = final_dir.parent_path() / (".old-" + final_dir.filename().string() + "-" + random_hex(8));
    if (::rename(final_dir.c_str(), old.c_str()) != 0) fail_errno("cannot move {} aside", final_dir.string());
  }
  if (::rename(staged.path().c_str(), final_dir.c_str()) != 0)
    fail_errno("cannot rename {} to {}", staged.path().string(), final_dir.string());
  staged.keep();
  if (!old.empty()) remove_tree(old);
}

// ---- housekeeping ----------------------------------------------------------

namespace {

constexpr std::string_view kBuildPrefix = ".build-lean-";
constexpr std::string_view kLockPrefix = ".lean-";
constexpr std::string_view kLockSuffix = ".lock";

// The key16 in a build tree's name (".build-lean-<key16>-XXXXXX"), or empty.
std::string_view build_tree_key(std::string_view name) {
  if (!name.starts_with(kBuildPrefix) || name.size() < kBuildPrefix.size() + 16) return {};
  return name.substr(kBuildPrefix.size(), 16);
}

// The key16 in a build lock's name (".lean-<key16>.lock"), or empty.
std::string_view build_lock_key(std::string_view name) {
  if (!name.starts_with(kLockPrefix) || !name.ends_with(kLockSuffix) ||
      name.size() <= kLockPrefix.size() + kLockSuffix.size())
    return {};
  return name.substr(kLockPrefix.size(), name.size() - kLockPrefix.size() - kLockSuffix.size());
}

// The names in `dir`, sorted; none if it is missing.
std::vector<std::string> entry_names(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec && ec != std::errc::no_such_file_or_directory) fail("cannot list {}: {}", dir.string(), ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

KernelBuildSweep sweep_builds_in(const fs::path& kernels, std::string_view own_key16) {
  KernelBuildSweep out;
  std::vector<std::string> names = entry_names(kernels);
  // A build takes its lock before it makes its tree and removes the tree
  // before it lets go: a tree whose lock nobody holds is a dead build's.
  for (const std::string& name : names) {
    std::string_view key = build_tree_key(name);
    if (key.empty()) continue;
    fs::path tree = kernels / name;
    if (key != own_key16 && is_locked(lean_build_lock(kernels, key))) {
      out.running.push_back(tree);
      continue;
    }
    remove_tree(tree);
    ++out.builds_removed;
  }
  for (const std::string& name : names) {
    std::string_view key = build_lock_key(name);
    if (key.empty() || key == own_key16) continue;
    fs::path path = kernels / name;
    LockFile lock = LockFile::try_lock(path);
    if (!lock.locked()) continue;  // a build runs (or waits its turn)
    lock.remove_locked(path);
    ++out.locks_removed;
  }
  return out;
}

}  // namespace

fs::path lean_build_lock(const fs::path& kernels, std::string_view key16) {
  return kernels / fmt::format("{}{}{}", kLockPrefix, key16, kLockSuffix);
}

KernelBuildSweep sweep_kernel_builds(std::string_view own_key16) { return sweep_builds_in(kernels_dir(), own_key16); }

ClearedKernels clear_kernel_cache() {
  ClearedKernels out;
  fs::path kernels = cache_dir() / "kernels";
  struct stat st;
  if (::lstat(kernels.c_str(), &st) != 0) {
    if (errno == ENOENT) return out;
    fail_errno("cannot stat {}", kernels.string());
  }
  if (S_ISLNK(st.st_mode)) {
    if (::unlink(kernels.c_str()) != 0 && errno != ENOENT) fail_errno("cannot remove {}", kernels.string());
    out.linked = true;
    return out;
  }
  if (!S_ISDIR(st.st_mode)) {
    remove_tree(kernels);
    return out;
  }
  out.builds = sweep_builds_in(kernels, {});
  bool building = !out.builds.running.empty();
  out.fetch_running = is_locked(kernels / ".lock");
  for (const std::string& name : entry_names(kernels)) {
    fs::path path = kernels / name;
    // Builds' trees and locks: the sweep removed those of no running build.
    if (!build_tree_key(name).empty() || !build_lock_key(name).empty()) continue;
    if (name == ".lock") {
      if (out.fetch_running) continue;
      LockFile lock = LockFile::try_lock(path);
      if (lock.locked())
        lock.remove_locked(path);
      else
        out.fetch_running = true;  // started meanwhile
      continue;
    }
    // .tmp-*, .download-*, .old-*: a fetch's work, or a kernel being
    // installed or replaced.
    if (name.starts_with(".")) {
      if (out.fetch_running || building) continue;
      remove_tree(path);
      continue;
    }
    bool kernel = read_kernel_record(path).has_value();
    remove_tree(path);  // a kernel, a failed build's log, anything else
    if (kernel) ++out.removed;
  }
  // The directory itself when nothing is left (kernels_dir() makes it again);
  // not empty: something started meanwhile.
  if (!out.fetch_running && !building) ::rmdir(kernels.c_str());
  return out;
}

void remove_cached_kernel(std::string_view release) {
  fs::path kernels = kernels_dir();
  std::string name(release);
  std::optional<KernelRecord> record;
  if (!name.empty() && !name.starts_with('.') && name.find('/') == std::string::npos)
    record = read_kernel_record(kernels / name);
  if (!record || record->release != name) {
    std::vector<std::string> cached;
    for (const Kernel& k : list_cached_kernels()) cached.push_back(k.release);
    fail("cannot remove kernel {}: it is not in {} (cached: {})", name, kernels.string(),
         cached.empty() ? "none" : join(cached, ", "));
  }
  if (record->kind == "lean" && record->key.size() >= 16) {
    fs::path lock = lean_build_lock(kernels, std::string_view(record->key).substr(0, 16));
    if (is_locked(lock))
      fail("cannot remove kernel {}: a `kestrel kernel build` of it is running (it holds {}); wait for it to end", name,
           lock.string());
  }
  fs::path aside = kernels / (".old-" + name + "-" + random_hex(8));
  if (::rename((kernels / name).c_str(), aside.c_str()) != 0)
    fail_errno("cannot remove kernel {}: cannot move {} aside", name, (kernels / name).string());
  remove_tree(aside);
}

int compare_versions(std::string_view a, std::string_view b) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      size_t i_end = i, j_end = j;
      while (i_end < a.size() && is_digit(a[i_end])) ++i_end;
      while (j_end < b.size() && is_digit(b[j_end])) ++j_end;
      std::string_view x = a.substr(i, i_end - i), y = b.substr(j, j_end - j);
      while (x.size() > 1 && x[0] == '0') x.remove_prefix(1);
      while (y.size() > 1 && y[0] == '0') y.remove_prefix(1);
      if (x.size() != y.size()) return x.size() < y.size() ? -1 : 1;
      if (int c = x.compare(y)) return c < 0 ? -1 : 1;
      i = i_end;
      j = j_end;
    } else {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]) ? -1 : 1;
      ++i;
      ++j;
    }
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

}  // namespace kestrel::assets

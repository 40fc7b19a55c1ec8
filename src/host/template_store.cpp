#include "host/template_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "assets/cache.hpp"
#include "assets/file_stamp.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/random.hpp"
#include "util/sha256.hpp"

namespace kestrel::host {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// The parts of a command line that differ between two VMs of one
// configuration: names and the paths of their own files.
std::string canonical_argv(vm::VmConfig c, const std::string& qemu_binary) {
  c.name = "kestrel-template";
  c.paths.dir = "/KESTREL-VM";
  // A 9p device's export and readonly= are the host's side: nothing of them
  // is in the device state a clone loads (nothing is mounted in a template).
  for (auto& share : c.shares) {
    share.path = "/KESTREL-SHARE-" + share.tag;
    share.read_only = false;
  }
  if (!c.disk.empty()) c.disk = "/KESTREL-VM/disk.qcow2";
  // A NIC's backend and MAC are not in the state a clone loads (the agent
  // sets each clone's MAC); only how many there are and their kinds count.
  for (size_t k = 0; k < c.nics.size(); ++k) {
    c.nics[k].local = "/KESTREL-VM/nic" + std::to_string(k) + ".sock";
    c.nics[k].remote = "/KESTREL-VM/peer" + std::to_string(k) + ".sock";
    c.nics[k].mac.clear();
  }
  c.memory_file = "/KESTREL-TEMPLATE/memory";
  c.memory_shared = false;
  c.incoming = true;
  std::string out;
  for (const auto& arg : vm::qemu_argv(c, qemu_binary)) {
    out += arg;
    out += '\0';
  }
  return out;
}

std::string state_digest(const fs::path& state) { return sha256_hex(read_file(state)); }

}  // namespace

fs::path templates_dir() {
  // On a cluster whose cache is shared, templates stay on each node's disk.
  if (const char* env = std::getenv("KESTREL_TEMPLATE_DIR"); env && *env) {
    fs::path dir(env);
    if (!dir.is_absolute()) fail("KESTREL_TEMPLATE_DIR={}: expected an absolute path", env);
    return dir;
  }
  return assets::cache_dir() / "templates";
}

std::string template_key(const vm::VmConfig& config, const std::string& qemu_binary, const std::string& image_id,
                         const std::string& host) {
  Sha256 h;
  h.update("kestrel-template-" + std::to_string(kTemplateFormat) + "\n");
  h.update(vm::qemu_version(qemu_binary) + "\n");
  h.update(dump_json(assets::file_stamp(qemu_binary)) + "\n");
  h.update(dump_json(assets::file_stamp(config.kernel)) + "\n");
  h.update(dump_json(assets::file_stamp(config.initramfs)) + "\n");  // also named by its content hash
  if (!image_id.empty()) h.update("image " + image_id + "\n");
  h.update("host " + host + "\n");
  h.update(canonical_argv(config, qemu_binary));
  return h.hex_digest();
}

TemplateFiles template_files(const std::string& key) { return {templates_dir() / key}; }
TemplateFiles template_build_files(const std::string& key) { return {templates_dir() / (".build-" + key)}; }
fs::path template_lock(const std::string& key) { return templates_dir() / (key + ".lock"); }

std::optional<TemplateInUse> find_template(const std::string& key, uint32_t mem_mib, std::string* problem) {
  TemplateFiles t = template_files(key);
  // A remover holds the exclusive lock only while it moves the directory aside.
  LockFile hold = LockFile::lock_existing(t.dir, Deadline::after(2s), LockFile::Mode::kShared);
  if (!hold.locked()) return std::nullopt;  // never built, or just removed
  auto text = read_file_if_exists(t.meta());
  std::string why;
  try {
    json meta = text ? parse_json(*text) : json();
    if (!text) {
      why = "template.json is missing";
    } else if (!meta.is_object() || meta.value("format", 0) != kTemplateFormat || meta.value("key", "") != key) {
      why = "template.json is not of this kestrel";
    } else if (!assets::same_stamp(meta["memory"], t.memory())) {
      why = "the memory file was changed or removed";
    } else if (meta["memory"].value("size", uint64_t{0}) != uint64_t{mem_mib} << 20) {
      why = "the memory file has the wrong size";
    } else if (meta.contains("disk") && !assets::same_stamp(meta["disk"], t.disk())) {
      why = "the disk overlay was changed or removed";
    } else if (!assets::same_stamp(meta["state"], t.state()) ||
               state_digest(t.state()) != meta.value("state_sha256", "")) {
      why = "the device state was changed or removed";
    }
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (why.empty()) return TemplateInUse{t, std::move(hold)};
  if (problem) *problem = why;
  hold.unlock();
  remove_template(t.dir);  // unless another run boots from it right now: then the rebuild replaces it
  return std::nullopt;
}

TemplateInUse publish_template(const std::string& key, const json& description) {
  TemplateFiles build = template_build_files(key), final = template_files(key);
  json meta = description;
  meta["format"] = kTemplateFormat;
  meta["key"] = key;
  meta["created"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  meta["memory"] = assets::file_stamp(build.memory());
  meta["state"] = assets::file_stamp(build.state());
  meta["state_sha256"] = state_digest(build.state());
  if (fs::exists(build.disk())) meta["disk"] = assets::file_stamp(build.disk());
  if (meta["memory"].is_null() || meta["state"].is_null()) fail("template {} is incomplete", build.dir.string());
  write_file_atomic(build.meta(), dump_json(meta, 2) + "\n", 0644);
  // A damaged predecessor (we hold the build lock): runs hold it only while
  // their QEMU starts.
  if (remove_template(final.dir, Deadline::after(5s)) == Removal::kInUse)
    fail("cannot replace template {}: runs still start from it", final.dir.string());
  // Held before the rename: the lock follows the directory.
  LockFile hold = LockFile::lock_existing(build.dir, Deadline::after(0ms), LockFile::Mode::kShared);
  if (!hold.locked()) fail("cannot lock template {}", build.dir.string());
  if (::rename(build.dir.c_str(), final.dir.c_str()) != 0)
    fail_errno("cannot move template {} into place", build.dir.string());
  return {final, std::move(hold)};
}

void record_builder(const LockFile& lock) {
  std::string pid = std::to_string(::getpid()) + "\n";
  // Informative only: a failure changes nothing but the waiters' message.
  if (::ftruncate(lock.fd(), 0) == 0) (void)!::pwrite(lock.fd(), pid.data(), pid.size(), 0);
}

int builder_pid(const std::string& key) {
  try {
    auto text = read_file_if_exists(template_lock(key));
    return text ? std::atoi(text->c_str()) : 0;
  } catch (const Error&) {
    return 0;
  }
}

namespace {

constexpr std::string_view kBuildPrefix = ".build-", kTrashPrefix = ".trash-";

}  // namespace

std::vector<TemplateInfo> list_templates() {
  std::vector<TemplateInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(templates_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_directory(ec)) continue;
    TemplateInfo info;
    info.dir = entry.path();
    info.key = name;
    if (auto text = read_file_if_exists(entry.path() / "template.json")) info.meta = parse_json(*text);
    if (info.meta.is_discarded()) info.meta = nullptr;
    info.disk_bytes = blocks_in_dir(entry.path());
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<TemplateInfo> list_template_builds() {
  std::vector<TemplateInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(templates_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (!name.starts_with(kBuildPrefix) || !entry.is_directory(ec)) continue;
    TemplateInfo info;
    info.dir = entry.path();
    info.key = name.substr(kBuildPrefix.size());
    info.state = is_locked(template_lock(info.key)) ? TemplateInfo::State::kBuilding : TemplateInfo::State::kAbandoned;
    if (info.state == TemplateInfo::State::kBuilding) info.builder_pid = builder_pid(info.key);
    info.disk_bytes = blocks_in_dir(entry.path());
    out.push_back(std::move(info));
  }
  return out;
}

void mark_template_used(const TemplateFiles& t) { ::utimensat(AT_FDCWD, t.meta().c_str(), nullptr, 0); }

constexpr int64_t kRecentlyUsedSeconds = 3600;

void prune_templates(size_t keep, std::chrono::hours max_age, const fs::path& except) {
  struct Used {
    fs::path dir;
    std::string key;
    int64_t used;
  };
  std::vector<Used> all;
  for (const auto& t : list_templates()) {
    struct stat st;
    int64_t used = ::stat((t.dir / "template.json").c_str(), &st) == 0 ? st.st_mtim.tv_sec : 0;
    all.push_back({t.dir, t.key, used});
  }
  std::sort(all.begin(), all.end(), [](const Used& a, const Used& b) { return a.used > b.used; });
  int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Pruning is housekeeping: a failure must not fail a run.
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].dir == except) continue;
    bool old = now - all[i].used > std::chrono::duration_cast<std::chrono::seconds>(max_age).count();
    // One used within the hour is in use: by the runs of a test suite, by a
    // topology's other nodes (each configuration its own template).
    bool recent = now - all[i].used < kRecentlyUsedSeconds;
    if ((i < keep || recent) && !old) continue;
    try {
      LockFile lock = LockFile::try_lock(template_lock(all[i].key));
      if (lock.locked()) remove_template(all[i].dir);  // else: being rebuilt right now
    } catch (const Error&) {
    }
  }
  try {
    remove_abandoned_builds();
    remove_stale_template_locks();
  } catch (const Error&) {
  }
}

size_t remove_abandoned_builds() {
  size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(templates_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec)) continue;
    if (name.starts_with(kBuildPrefix)) {
      // Its builder holds the key's lock for as long as it lives.
      LockFile lock = LockFile::try_lock(template_lock(name.substr(kBuildPrefix.size())));
      if (!lock.locked()) continue;
      remove_tree(entry.path());
      ++removed;
    } else if (name.starts_with(kTrashPrefix)) {
      // A removal that was interrupted (its remover held the directory's lock).
      LockFile lock = LockFile::lock_existing(entry.path(), Deadline::after(0ms), LockFile::Mode::kExclusive);
      if (!lock.locked()) continue;
      remove_tree(entry.path());
      ++removed;
    }
  }
  return removed;
}

void remove_stale_template_locks() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(templates_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (!name.ends_with(".lock") || name[0] == '.') continue;
    std::string key = name.substr(0, name.size() - 5);
    if (fs::is_directory(templates_dir() / key, ec)) continue;  // guards a template
    try {
      LockFile lock = LockFile::try_lock(entry.path());
      if (lock.locked()) lock.remove_locked(entry.path());  // else: being built
    } catch (const Error&) {
      // Housekeeping, like pruning.
    }
  }
}

Removal remove_template(const fs::path& dir, Deadline wait) {
  LockFile lock = LockFile::lock_existing(dir, wait, LockFile::Mode::kExclusive);
  if (!lock.locked()) {
    std::error_code ec;
    return fs::exists(dir, ec) ? Removal::kInUse : Removal::kGone;
  }
  // The lock moves with the directory: until it is gone, an interrupted
  // removal's leftover is known to be one by its name, and no run can use it.
  fs::path aside = dir.parent_path() / (std::string(kTrashPrefix) + dir.filename().string() + "-" + random_hex(6));
  if (::rename(dir.c_str(), aside.c_str()) != 0) fail_errno("cannot remove template {}", dir.string());
  remove_tree(aside);
  return Removal::kRemoved;
}

ClearedTemplates clear_templates() {
  ClearedTemplates out;
  for (const auto& t : list_templates()) {
    // A template being rebuilt right now is its builder's business.
    LockFile lock = LockFile::try_lock(template_lock(t.key));
    if (!lock.locked()) {
      ++out.building;
      continue;
    }
    Removal r = remove_template(t.dir);
    if (r == Removal::kRemoved) ++out.removed;
    if (r == Removal::kInUse) ++out.in_use;
  }
  for (const auto& b : list_template_builds())
    if (b.state == TemplateInfo::State::kBuilding) ++out.building;
  out.builds_removed = remove_abandoned_builds();
  remove_stale_template_locks();
  return out;
}

}  // namespace kestrel::host

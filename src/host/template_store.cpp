#include "host/template_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "assets/cache.hpp"
#include "assets/file_stamp.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/random.hpp"
#include "util/sha256.hpp"

namespace kestrel::host {

namespace {

using nlohmann::json;

// The parts of a command line that differ between two VMs of one
// configuration: names and the paths of their own files.
std::string canonical_argv(vm::VmConfig c, const std::string& qemu_binary) {
  c.name = "kestrel-template";
  c.paths.dir = "/KESTREL-VM";
  for (auto& share : c.shares) share.path = "/KESTREL-SHARE-" + share.tag;
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

fs::path templates_dir() { return assets::cache_dir() / "templates"; }

std::string template_key(const vm::VmConfig& config, const std::string& qemu_binary) {
  Sha256 h;
  h.update("kestrel-template-" + std::to_string(kTemplateFormat) + "\n");
  h.update(vm::qemu_version(qemu_binary) + "\n");
  h.update(assets::file_stamp(qemu_binary).dump() + "\n");
  h.update(assets::file_stamp(config.kernel).dump() + "\n");
  h.update(assets::file_stamp(config.initramfs).dump() + "\n");  // also named by its content hash
  h.update(canonical_argv(config, qemu_binary));
  return h.hex_digest();
}

TemplateFiles template_files(const std::string& key) { return {templates_dir() / key}; }
TemplateFiles template_build_files(const std::string& key) { return {templates_dir() / (".build-" + key)}; }
fs::path template_lock(const std::string& key) { return templates_dir() / (key + ".lock"); }

std::optional<TemplateFiles> find_template(const std::string& key, uint32_t mem_mib, std::string* problem) {
  TemplateFiles t = template_files(key);
  auto text = read_file_if_exists(t.meta());
  if (!text) {
    std::error_code ec;
    if (!fs::exists(t.dir, ec)) return std::nullopt;  // never built: not a problem
  }
  std::string why;
  try {
    json meta = text ? json::parse(*text, nullptr, false) : json();
    if (!text) {
      why = "template.json is missing";
    } else if (!meta.is_object() || meta.value("format", 0) != kTemplateFormat || meta.value("key", "") != key) {
      why = "template.json is not of this kestrel";
    } else if (!assets::same_stamp(meta["memory"], t.memory())) {
      why = "the memory file was changed or removed";
    } else if (meta["memory"].value("size", uint64_t{0}) != uint64_t{mem_mib} << 20) {
      why = "the memory file has the wrong size";
    } else if (!assets::same_stamp(meta["state"], t.state()) ||
               state_digest(t.state()) != meta.value("state_sha256", "")) {
      why = "the device state was changed or removed";
    }
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (why.empty()) return t;
  if (problem) *problem = why;
  remove_template(t.dir);
  return std::nullopt;
}

TemplateFiles publish_template(const std::string& key, const json& description) {
  TemplateFiles build = template_build_files(key), final = template_files(key);
  json meta = description;
  meta["format"] = kTemplateFormat;
  meta["key"] = key;
  meta["created"] =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  meta["memory"] = assets::file_stamp(build.memory());
  meta["state"] = assets::file_stamp(build.state());
  meta["state_sha256"] = state_digest(build.state());
  if (meta["memory"].is_null() || meta["state"].is_null()) fail("template {} is incomplete", build.dir.string());
  write_file_atomic(build.meta(), meta.dump(2) + "\n", 0644);
  remove_template(final.dir);  // a damaged predecessor; we hold the build lock
  if (::rename(build.dir.c_str(), final.dir.c_str()) != 0)
    fail_errno("cannot move template {} into place", build.dir.string());
  return final;
}

std::vector<TemplateInfo> list_templates() {
  std::vector<TemplateInfo> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(templates_dir(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.' || !entry.is_directory(ec)) continue;
    TemplateInfo info;
    info.dir = entry.path();
    info.key = name;
    if (auto text = read_file_if_exists(entry.path() / "template.json")) info.meta = json::parse(*text, nullptr, false);
    if (info.meta.is_discarded()) info.meta = nullptr;
    for (const auto& file : fs::directory_iterator(entry.path(), ec)) {
      struct stat st;
      if (::stat(file.path().c_str(), &st) == 0) info.disk_bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    out.push_back(std::move(info));
  }
  return out;
}

void mark_template_used(const TemplateFiles& t) { ::utimensat(AT_FDCWD, t.meta().c_str(), nullptr, 0); }

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
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].dir == except) continue;
    bool old = now - all[i].used > std::chrono::duration_cast<std::chrono::seconds>(max_age).count();
    if (i < keep && !old) continue;
    LockFile lock = LockFile::try_lock(template_lock(all[i].key));
    if (!lock.locked()) continue;  // being rebuilt right now
    try {
      remove_template(all[i].dir);
    } catch (const Error&) {
      // Pruning is housekeeping: a failure must not fail a run.
    }
  }
  remove_stale_template_locks();
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

void remove_template(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  fs::path aside = dir.parent_path() / (".trash-" + dir.filename().string() + "-" + random_hex(6));
  if (::rename(dir.c_str(), aside.c_str()) != 0) fail_errno("cannot remove template {}", dir.string());
  remove_tree(aside);
}

}  // namespace kestrel::host

// The cache of VM templates for warm starts (docs/warm-starts.md): one
// directory per VM configuration, cache_dir()/templates/<key>/, holding the
// guest's memory (a sparse file clones map privately), QEMU's device state,
// the template's boot console log and template.json (what it is, and stamps
// that prove the files are the ones that were saved).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/lockfile.hpp"
#include "vm/qemu.hpp"

namespace kestrel::host {

namespace fs = std::filesystem;

// Bump when the layout or the snapshot point changes: old templates are ignored.
constexpr int kTemplateFormat = 1;

struct TemplateFiles {
  fs::path dir;
  fs::path memory() const { return dir / "memory"; }
  fs::path state() const { return dir / "state"; }
  fs::path console_log() const { return dir / "console.log"; }
  fs::path meta() const { return dir / "template.json"; }
};

fs::path templates_dir();

// The identity of a VM configuration: a SHA-256 over everything a clone must
// share with its template: the QEMU binary and version, the command line
// with per-VM names and paths replaced by placeholders (machine, memory,
// CPUs, accelerator, devices, share tags, kernel command line), and the
// kernel and initramfs files' identities.
std::string template_key(const vm::VmConfig& config, const std::string& qemu_binary);

// The final directory of a key, and where its builder assembles it.
TemplateFiles template_files(const std::string& key);
TemplateFiles template_build_files(const std::string& key);
// Held by the one process that builds the template of `key`.
fs::path template_lock(const std::string& key);

// The template of `key` if it is complete and intact; a damaged one (missing
// or truncated file, changed memory file, state that does not match its
// checksum) is removed and nullopt returned, with `problem` saying why.
std::optional<TemplateFiles> find_template(const std::string& key, uint32_t mem_mib, std::string* problem = nullptr);

// Records what was saved, making the build directory a complete template,
// and moves it into place.
TemplateFiles publish_template(const std::string& key, const nlohmann::json& description);

struct TemplateInfo {
  fs::path dir;
  std::string key;
  nlohmann::json meta;      // null if unreadable
  uint64_t disk_bytes = 0;  // blocks really used (the memory file is sparse)
};
// Every template directory in the cache (complete ones; builds in progress skipped).
std::vector<TemplateInfo> list_templates();

// Notes that a template was just used (its template.json's mtime), for pruning.
void mark_template_used(const TemplateFiles& t);

// Keeps the cache bounded: removes templates unused for `max_age` and, beyond
// the `keep` most recently used ones, the rest. Templates being built are
// skipped, and so is `except`.
void prune_templates(size_t keep, std::chrono::hours max_age, const fs::path& except);

// Removes the lock files of templates that no longer exist and that nobody
// is building (a lock file outlives its template otherwise).
void remove_stale_template_locks();

// Removes a template (moved aside first, so a concurrent reader never sees
// half of one). Running clones keep their memory: it is mapped, not read.
void remove_template(const fs::path& dir);

}  // namespace kestrel::host

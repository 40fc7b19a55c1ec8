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
  // An image template's disk overlay (frozen, read-only): every clone's own
  // overlay reads through it to the image.
  fs::path disk() const { return dir / "disk.qcow2"; }
  fs::path meta() const { return dir / "template.json"; }
};

// $KESTREL_TEMPLATE_DIR (an absolute path: on a cluster whose cache is shared,
// a node-local directory; docs/scale-out.md), else the cache's templates/.
fs::path templates_dir();

// The identity of a VM configuration: a SHA-256 over everything a clone must
// share with its template: the QEMU binary and version, the command line
// with per-VM names and paths replaced by placeholders (machine, memory,
// CPUs, accelerator, devices, share tags, kernel command line), and the
// kernel and initramfs files' identities.
// An image's id (`image_id`) is part of the key: the template's disk is built
// on it; so is `host` (vm::snapshot_host: the host's CPU and kernel), so that
// a cache shared by several machines never restores a template on a host
// that could not load it.
std::string template_key(const vm::VmConfig& config, const std::string& qemu_binary, const std::string& image_id = "",
                         const std::string& host = "");

// The final directory of a key, and where its builder assembles it.
TemplateFiles template_files(const std::string& key);
TemplateFiles template_build_files(const std::string& key);
// Held by the one process that builds the template of `key`.
fs::path template_lock(const std::string& key);

// A template a run is about to boot from, with a shared flock on its
// directory: removers (`cache clear`, pruning, a rebuild) take the exclusive
// lock, so they leave it alone until QEMU has mapped its memory and read its
// state; the run drops `hold` once the clone has greeted. (After that the
// files may go: the kernel keeps a mapped file's data for as long as the
// mapping lives.) docs/warm-starts.md.
struct TemplateInUse {
  TemplateFiles files;
  LockFile hold;
};

// The template of `key` if it is complete and intact; a damaged one (missing
// or truncated file, changed memory file, state that does not match its
// checksum) is removed (unless another run holds it) and nullopt returned,
// with `problem` saying why.
std::optional<TemplateInUse> find_template(const std::string& key, uint32_t mem_mib, std::string* problem = nullptr);

// Records what was saved, making the build directory a complete template,
// and moves it into place (replacing a damaged predecessor once no run
// holds it, waiting a few seconds at most). Returns it held.
TemplateInUse publish_template(const std::string& key, const nlohmann::json& description);

// The builder of a key writes its pid into the key's lock file, so that
// runs waiting for it can say whom they wait for. 0: not known.
void record_builder(const LockFile& lock);
int builder_pid(const std::string& key);

struct TemplateInfo {
  enum class State { kReady, kBuilding, kAbandoned };
  fs::path dir;
  std::string key;
  State state = State::kReady;
  nlohmann::json meta;      // null if unreadable
  uint64_t disk_bytes = 0;  // blocks really used (the memory file is sparse)
  int builder_pid = 0;      // kBuilding: who builds it, if known
};
// Every complete template directory in the cache.
std::vector<TemplateInfo> list_templates();
// Every build directory (.build-<key>): kBuilding while its builder holds
// the key's lock, else kAbandoned (the builder died).
std::vector<TemplateInfo> list_template_builds();

// Notes that a template was just used (its template.json's mtime), for pruning.
void mark_template_used(const TemplateFiles& t);

// Keeps the cache bounded: removes templates unused for `max_age` and, beyond
// the `keep` most recently used ones, the rest unless used within the last
// hour, and abandoned builds.
// Templates being built or in use are skipped, and so is `except`.
void prune_templates(size_t keep, std::chrono::hours max_age, const fs::path& except);

// Removes the build directories of builders that died (76-101 MB each) and
// what an interrupted removal left; returns how many.
size_t remove_abandoned_builds();

// Removes the lock files of templates that no longer exist and that nobody
// is building (a lock file outlives its template otherwise).
void remove_stale_template_locks();

// Removes a template once no run holds it (waiting until `wait`): takes its
// exclusive lock, moves it aside (so a reader never sees half of one), then
// deletes it.
enum class Removal { kRemoved, kInUse, kGone };
Removal remove_template(const fs::path& dir, Deadline wait = Deadline::after(std::chrono::milliseconds(0)));

// `kestrel cache clear`: every template and build no one uses or builds.
struct ClearedTemplates {
  size_t removed = 0;         // complete templates
  size_t in_use = 0;          // kept: a run is starting from it
  size_t building = 0;        // kept: being built or rebuilt (complete or not)
  size_t builds_removed = 0;  // abandoned builds
};
ClearedTemplates clear_templates();

}  // namespace kestrel::host

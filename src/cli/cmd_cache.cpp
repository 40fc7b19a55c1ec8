// kestrel cache ls | clear
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "assets/cache.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "host/template_store.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"

namespace kestrel::cli {

namespace {

namespace fs = std::filesystem;

const char* kCacheHelp = R"(Manage kestrel's cache: warm-start templates and initramfs images (rebuilt
on demand) and guest kernels (downloaded by `kestrel kernel fetch`).

The cache is $KESTREL_CACHE_DIR, else $XDG_CACHE_HOME/kestrel, else
~/.cache/kestrel. Templates: see docs/warm-starts.md.
)";

uint64_t disk_usage(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat st;
    if (::lstat(it->path().c_str(), &st) == 0 && !S_ISDIR(st.st_mode))
      total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

int cache_ls(bool json) {
  auto templates = host::list_templates();
  fs::path cache = assets::cache_dir();
  if (json) {
    nlohmann::json out = {{"dir", cache.string()}, {"templates", nlohmann::json::array()}};
    for (const auto& t : templates)
      out["templates"].push_back(
          {{"dir", t.dir.string()}, {"key", t.key}, {"disk_bytes", t.disk_bytes}, {"meta", t.meta}});
    out["initramfs_bytes"] = disk_usage(cache / "initramfs");
    out["kernels_bytes"] = disk_usage(cache / "kernels");
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("cache: %s\n", cache.c_str());
  std::printf("templates (%zu):\n", templates.size());
  for (const auto& t : templates) {
    const auto& m = t.meta;
    if (m.is_object()) {
      std::printf("  %.12s  kernel %s, %s MiB, %s CPU, %s, %s on disk, built in %s ms\n", t.key.c_str(),
                  m.value("kernel", "?").c_str(), m.contains("mem_mib") ? m["mem_mib"].dump().c_str() : "?",
                  m.contains("cpus") ? m["cpus"].dump().c_str() : "?", m.value("accel", "?").c_str(),
                  mib(t.disk_bytes).c_str(), m.contains("build_ms") ? m["build_ms"].dump().c_str() : "?");
    } else {
      std::printf("  %.12s  (incomplete or damaged; rebuilt on next use)\n", t.key.c_str());
    }
  }
  std::printf("initramfs images: %s\n", mib(disk_usage(cache / "initramfs")).c_str());
  std::printf("kernels: %s (`kestrel kernel ls`)\n", mib(disk_usage(cache / "kernels")).c_str());
  return 0;
}

int cache_clear(bool kernels) {
  fs::path cache = assets::cache_dir();
  size_t removed = 0, busy = 0;
  for (const auto& t : host::list_templates()) {
    // A template being rebuilt right now is its builder's business.
    LockFile lock = LockFile::try_lock(host::template_lock(t.key));
    if (!lock.locked()) {
      ++busy;
      continue;
    }
    host::remove_template(t.dir);
    ++removed;
  }
  host::remove_stale_template_locks();
  remove_tree(cache / "initramfs");
  std::printf("removed %zu template(s) and the initramfs images", removed);
  if (busy) std::printf("; %zu template(s) being built were left alone", busy);
  if (kernels) {
    remove_tree(cache / "kernels");
    remove_tree(cache / "user-kernels");
    std::printf("; removed the kernels (run `kestrel kernel fetch` before the next run)");
  }
  std::printf("\n");
  return 0;
}

}  // namespace

int cmd_cache(const Args& args) {
  CLI::App app(kCacheHelp, "kestrel cache");
  app.require_subcommand(1);
  bool json = false, kernels = false;
  auto* ls = app.add_subcommand("ls", "list templates (configuration, size) and what else the cache holds");
  ls->add_flag("--json", json, "print JSON");
  auto* clear = app.add_subcommand("clear", "remove templates and initramfs images (rebuilt on demand)");
  clear->add_flag("--kernels", kernels, "also remove the downloaded kernels");
  if (!parse(app, args)) return 0;
  if (ls->parsed()) return cache_ls(json);
  if (clear->parsed()) return cache_clear(kernels);
  return kExitUsage;
}

}  // namespace kestrel::cli

// kestrel cache ls | clear
#include <sys/stat.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "assets/cache.hpp"
#include "assets/initramfs.hpp"
#include "assets/kernel_store.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "host/template_store.hpp"
#include "image/store.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/strings.hpp"

namespace kestrel::cli {

namespace {

namespace fs = std::filesystem;

const char* kCacheHelp = R"(Manage kestrel's cache: warm-start templates and initramfs images (rebuilt
on demand), images built from recipes (docs/images.md; `kestrel image ls`)
and guest kernels (downloaded by `kestrel kernel fetch`, built by `kestrel
kernel build`; `kestrel kernel ls`, `kestrel kernel rm`).

The cache is $KESTREL_CACHE_DIR, else $XDG_CACHE_HOME/kestrel, else
~/.cache/kestrel. Templates: see docs/warm-starts.md.

`clear` also removes every image no VM runs on (rebuilt from its recipe
on the next use). It leaves what runs are using at that moment (a template or initramfs
their QEMU is opening, a template being built) and says so; `ls` also shows
template builds in progress and abandoned ones (their builder died), which
`clear` and the next build remove. `clear` also removes what `kestrel kernel
build`s that died left (a build tree is about 1.5 GB); `clear --kernels`
removes the kernels too, but not a running fetch's or build's files.
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

const char* build_state(const host::TemplateInfo& b) {
  return b.state == host::TemplateInfo::State::kBuilding ? "building" : "abandoned";
}

int cache_ls(bool json) {
  auto templates = host::list_templates();
  auto builds = host::list_template_builds();
  fs::path cache = assets::cache_dir();
  if (json) {
    nlohmann::json out = {
        {"dir", cache.string()}, {"templates", nlohmann::json::array()}, {"builds", nlohmann::json::array()}};
    for (const auto& t : templates)
      out["templates"].push_back(
          {{"dir", t.dir.string()}, {"key", t.key}, {"disk_bytes", t.disk_bytes}, {"meta", t.meta}});
    for (const auto& b : builds)
      out["builds"].push_back({{"dir", b.dir.string()},
                               {"key", b.key},
                               {"state", build_state(b)},
                               {"builder_pid", b.builder_pid},
                               {"disk_bytes", b.disk_bytes}});
    out["images_bytes"] = disk_usage(image::images_dir());
    out["images"] = nlohmann::json::array();
    for (const auto& i : image::list_images())
      out["images"].push_back({{"name", i.name}, {"id", i.id}, {"disk_bytes", i.disk_bytes}, {"current", i.current}});
    out["initramfs_bytes"] = disk_usage(cache / "initramfs");
    out["kernels_bytes"] = disk_usage(cache / "kernels");
    std::printf("%s\n", dump_json(out, 2).c_str());
    return 0;
  }
  std::printf("cache: %s\n", cache.c_str());
  std::printf("templates (%zu):\n", templates.size());
  for (const auto& t : templates) {
    const auto& m = t.meta;
    if (m.is_object()) {
      std::printf("  %.12s  kernel %s, %s MiB, %s CPU, %s, %s on disk, built in %s ms\n", t.key.c_str(),
                  m.value("kernel", "?").c_str(), m.contains("mem_mib") ? dump_json(m["mem_mib"]).c_str() : "?",
                  m.contains("cpus") ? dump_json(m["cpus"]).c_str() : "?", m.value("accel", "?").c_str(),
                  format_mib(t.disk_bytes).c_str(), m.contains("build_ms") ? dump_json(m["build_ms"]).c_str() : "?");
    } else {
      std::printf("  %.12s  (incomplete or damaged; rebuilt on next use)\n", t.key.c_str());
    }
  }
  if (!builds.empty()) std::printf("template builds (%zu):\n", builds.size());
  for (const auto& b : builds) {
    if (b.state == host::TemplateInfo::State::kBuilding)
      std::printf("  %.12s  building%s, %s on disk\n", b.key.c_str(),
                  b.builder_pid > 0 ? (" by pid " + std::to_string(b.builder_pid)).c_str() : "",
                  format_mib(b.disk_bytes).c_str());
    else
      std::printf("  %.12s  abandoned (its builder died), %s on disk; `kestrel cache clear` removes it\n",
                  b.key.c_str(), format_mib(b.disk_bytes).c_str());
  }
  auto images = image::list_images();
  std::printf("images (%zu, %s; `kestrel image ls`):\n", images.size(),
              format_mib(disk_usage(image::images_dir())).c_str());
  for (const auto& i : images)
    std::printf("  %-16s %s  %s on disk%s\n", i.name.c_str(), i.id.c_str(), format_mib(i.disk_bytes).c_str(),
                i.current ? "" : ", superseded");
  std::printf("initramfs images: %s\n", format_mib(disk_usage(cache / "initramfs")).c_str());
  std::printf("kernels: %s (`kestrel kernel ls`)\n", format_mib(disk_usage(cache / "kernels")).c_str());
  return 0;
}

int cache_clear(bool kernels) {
  fs::path cache = assets::cache_dir();
  // Images first: their templates go with them.
  image::ImageSweep im = image::sweep_images(true);
  host::ClearedTemplates t = host::clear_templates();
  assets::ClearedFiles images = assets::clear_initramfs_cache();
  std::printf("removed %zu template(s) and %zu initramfs image(s)", t.removed, images.removed);
  if (t.builds_removed) std::printf("; removed %zu abandoned template build(s)", t.builds_removed);
  std::printf("; removed %zu image(s)", im.removed);
  if (im.in_use) std::printf("; %zu image(s) in use by VMs, kept", im.in_use);
  // What runs use right now stays: they would fail (docs/warm-starts.md).
  if (t.in_use) std::printf("; %zu template(s) in use by starting runs, kept", t.in_use);
  if (t.building) std::printf("; %zu template(s) being built, kept", t.building);
  if (images.in_use) std::printf("; %zu initramfs file(s) in use, kept", images.in_use);
  assets::KernelBuildSweep builds;
  if (kernels) {
    assets::ClearedKernels k = assets::clear_kernel_cache();
    remove_tree(cache / "user-kernels");
    builds = k.builds;
    if (k.linked)
      std::printf("; removed the link %s (the kernels it leads to stay)", (cache / "kernels").c_str());
    else
      std::printf("; removed %zu kernel(s) (run `kestrel kernel fetch` before the next run)", k.removed);
    if (k.fetch_running) std::printf("; a `kestrel kernel fetch` is running: its files kept");
  } else {
    builds = assets::sweep_kernel_builds();
  }
  if (builds.builds_removed) std::printf("; removed %zu abandoned kernel build(s)", builds.builds_removed);
  // A build's tree and lock stay while it runs: it fails without them, and
  // another build of its kernel would start beside it.
  for (const fs::path& tree : builds.running)
    std::printf("; kept %s: a `kestrel kernel build` is running there", tree.c_str());
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
  auto* clear =
      app.add_subcommand("clear", "remove templates, initramfs images and images no VM uses (rebuilt on demand)");
  clear->add_flag("--kernels", kernels,
                  "also remove the cached kernels, Debian's and lean ones (not a running `kestrel kernel build`)");
  if (!parse(app, args)) return 0;
  if (ls->parsed()) return cache_ls(json);
  if (clear->parsed()) return cache_clear(kernels);
  return kExitUsage;
}

}  // namespace kestrel::cli

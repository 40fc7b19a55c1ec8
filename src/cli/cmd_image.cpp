// kestrel image build RECIPE [--refresh] | ls [--json] | rm NAME...
#include <unistd.h>

#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/config_options.hpp"
#include "cli/parse.hpp"
#include "host/run_options.hpp"
#include "host/template_store.hpp"
#include "image/build.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/signals.hpp"

namespace kestrel::cli {

namespace {

const char* kImageHelp = R"(Images: root file systems with a test's prerequisites (docs/images.md).

  kestrel image build RECIPE [--refresh]   build the recipe's image (once: a later build is a cache hit)
  kestrel image ls [--json]                list built images: name, id, size, age, templates using it
  kestrel image rm NAME|ID...              remove images and their templates (refused while a VM uses one)

A recipe is a TOML file (e.g. images/pg.toml): suite, packages, files, run
commands, size and services. `kestrel run --image RECIPE` (or `image =` in
kestrel.toml) runs a program with the image as the VM's root, through a
copy-on-write overlay of its own, its services already running (they were
started once, in the image's warm-start template). The first run builds the
image if needed.

A build runs mmdebstrap (as root in its root mode; otherwise in its unshare
mode, which needs the uidmap package and subordinate ids: `kestrel doctor`
checks them and prints the one-time setup), makes an ext4 file system
(fakeroot when not root) and a qcow2 disk, runs the recipe's `run` commands
as root in a VM booted from it, then starts its services in a VM and saves
its warm-start template. Progress is shown per stage (resolve, download,
unpack, image, provision, services, snapshot) with times and sizes. The image is named
by a hash of the recipe and the versions of the packages it got.

--refresh builds the recipe again with the latest packages: a new image if
any changed. The old one is superseded, as is the image of a recipe file
that was edited since: it stays until nothing uses it, and `kestrel gc`
removes it then.
)";

std::string age(int64_t created) {
  int64_t s = std::max<int64_t>(0, unix_seconds() - created);
  if (s < 120) return std::to_string(s) + " s";
  if (s < 7200) return std::to_string(s / 60) + " min";
  if (s < 2 * 86400) return std::to_string(s / 3600) + " h";
  return std::to_string(s / 86400) + " d";
}

int image_build(const std::string& recipe_path, bool refresh, const ConfigOptions& options) {
  image::Recipe recipe = image::load_recipe(recipe_path);
  config::Config config = load_config(options);
  SignalFd signals({SIGINT, SIGTERM, SIGHUP});
  image::BuildOptions o;
  o.refresh = refresh;
  o.vm = host::boot_options(config);
  o.vm.signal_fd = signals.fd();
  o.vm.notice = [](const std::string& line) { say(line); };
  o.say = [](const std::string& line) { say(line); };
  auto started = std::chrono::steady_clock::now();
  bool built = false;
  image::ImageInfo info;
  try {
    info = image::ensure_image(recipe, o, &built);
    if (built || image::image_templates(info.id).empty()) image::prepare_template(info, o);
  } catch (const Interrupted& e) {
    say(fmt::format("interrupted by signal {}: the build was stopped and its files removed", e.signo()));
    return 128 + e.signo();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (built)
    say(fmt::format("image {} ({}) built in {:.1f} s: {}", info.name, info.id, s, info.files.disk().string()));
  else
    say(fmt::format("image {} ({}) is up to date ({:.2f} s): {}", info.name, info.id, s, info.files.disk().string()));
  return 0;
}

int image_ls(bool json) {
  auto images = image::list_images();
  std::map<std::string, std::vector<std::string>> templates_of;  // image id -> template keys
  for (const auto& t : host::list_templates())
    if (t.meta.is_object() && t.meta.contains("image")) templates_of[t.meta.value("image", "")].push_back(t.key);
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& i : images) {
      nlohmann::json templates = nlohmann::json::array();
      for (const auto& key : templates_of[i.id]) templates.push_back((host::templates_dir() / key).string());
      out.push_back({{"name", i.name},
                     {"id", i.id},
                     {"dir", i.files.dir.string()},
                     {"disk_bytes", i.disk_bytes},
                     {"created", i.created},
                     {"current", i.current},
                     {"recipe", i.meta.value("recipe", "")},
                     {"templates", templates}});
    }
    std::printf("%s\n", dump_json(out, 2).c_str());
    return 0;
  }
  if (images.empty()) {
    std::printf("no images (build one with `kestrel image build RECIPE`)\n");
    return 0;
  }
  std::printf("%-16s %-16s %10s %8s  %s\n", "NAME", "ID", "SIZE", "AGE", "TEMPLATES");
  for (const auto& i : images) {
    std::string templates;
    for (const auto& key : templates_of[i.id]) templates += (templates.empty() ? "" : " ") + key.substr(0, 12);
    if (templates.empty()) templates = "-";
    std::printf("%-16s %-16s %10s %8s  %s%s\n", i.name.c_str(), i.id.c_str(), image::human_size(i.disk_bytes).c_str(),
                age(i.created).c_str(), templates.c_str(),
                i.current ? "" : "  (superseded: `kestrel gc` removes it once unused)");
  }
  return 0;
}

int image_rm(const std::vector<std::string>& names) {
  int status = 0;
  for (const auto& name : names) {
    try {
      auto found = image::find_image(name);
      if (!found) fail("no image named {} (`kestrel image ls` lists them)", name);
      image::remove_image(*found);
      std::printf("removed image %s (%s)\n", found->name.c_str(), found->id.c_str());
    } catch (const Error& e) {
      say(std::string("error: ") + e.what());
      status = 1;
    }
  }
  return status;
}

}  // namespace

int cmd_image(const Args& args) {
  CLI::App app(kImageHelp, "kestrel image");
  app.require_subcommand(1);
  std::string recipe;
  bool refresh = false, json = false;
  std::vector<std::string> names;
  auto* build = app.add_subcommand("build", "build a recipe's image (a cache hit if built)");
  build->add_option("RECIPE", recipe, "the recipe file (TOML)")->required();
  build->add_flag("--refresh", refresh, "build again with the latest packages");
  ConfigOptions options(*build);
  auto* ls = app.add_subcommand("ls", "list built images");
  ls->add_flag("--json", json, "print JSON");
  auto* rm = app.add_subcommand("rm", "remove images and their templates");
  rm->add_option("NAME", names, "image names or ids")->required();
  if (!parse(app, args)) return 0;
  if (build->parsed()) return image_build(recipe, refresh, options);
  if (ls->parsed()) return image_ls(json);
  if (rm->parsed()) return image_rm(names);
  return kExitUsage;
}

}  // namespace kestrel::cli

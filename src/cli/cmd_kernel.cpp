// kestrel kernel fetch | ls
#include <cstdio>

#include "assets/cache.hpp"
#include "assets/kernel.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "util/error.hpp"

namespace kestrel::cli {

int cmd_kernel(const Args& args) {
  CLI::App app("Manage guest kernels.", "kestrel kernel");
  app.require_subcommand(1);
  bool force = false;
  auto* fetch =
      app.add_subcommand("fetch",
                         "download Debian's linux-image-amd64 (apt-get download, no install, no root) and extract\n"
                         "the uncompressed vmlinux and the modules kestrel needs into the cache");
  fetch->add_flag("--force", force, "download again even if this release is cached");
  auto* ls = app.add_subcommand("ls", "list cached kernels");
  if (!parse(app, args)) return 0;

  if (fetch->parsed()) {
    assets::Kernel k = assets::fetch_debian_kernel([](const std::string& line) { say(line); }, force);
    std::printf("%s\t%s\n", k.release.c_str(), k.image.c_str());
    return 0;
  }
  if (ls->parsed()) {
    auto kernels = assets::list_cached_kernels();
    if (kernels.empty()) {
      say("no kernels cached in " + (assets::cache_dir() / "kernels").string() + "; run `kestrel kernel fetch`");
      return 0;
    }
    for (const auto& k : kernels) std::printf("%s\t%s\t%s\n", k.release.c_str(), k.image.c_str(), k.source.c_str());
    return 0;
  }
  return kExitUsage;
}

}  // namespace kestrel::cli

// kestrel kernel fetch | build | ls
#include <csignal>
#include <cstdio>

#include "assets/cache.hpp"
#include "assets/kernel.hpp"
#include "assets/kernel_build.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "util/error.hpp"
#include "util/signals.hpp"

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
  int jobs = 0;
  bool build_force = false;
  auto* build =
      app.add_subcommand("build",
                         "build a lean kernel for kestrel from Debian's linux-source-6.1 (no root) with the config in\n"
                         "kernel/lean.config, everything the guest needs built in; select it with --kernel lean\n"
                         "(docs/kernels.md). Minutes: needs make, gcc, bison, flex, bc and libelf-dev");
  build->add_option("-j,--jobs", jobs, "parallel compile jobs (default: the CPUs kestrel may use)")
      ->check(CLI::Range(1, 1024));
  build->add_flag("--force", build_force, "build again even if this kernel is cached");
  auto* ls = app.add_subcommand("ls", "list cached kernels: the default (Debian's newest) first, lean ones last");
  if (!parse(app, args)) return 0;

  if (fetch->parsed()) {
    assets::Kernel k = assets::fetch_debian_kernel([](const std::string& line) { say(line); }, force);
    std::printf("%s\t%s\n", k.release.c_str(), k.image.c_str());
    return 0;
  }
  if (build->parsed()) {
    // Ctrl-C stops make and removes the build tree (about 1.5 GB) on the way out.
    SignalFd signals({SIGINT, SIGTERM, SIGHUP});
    assets::LeanBuildOptions o;
    o.jobs = jobs;
    o.force = build_force;
    o.signal_fd = signals.fd();
    o.progress = [](const std::string& line) { say("kernel build: " + line); };
    try {
      assets::Kernel k = assets::build_lean_kernel(o);
      std::printf("%s\t%s\n", k.release.c_str(), k.image.c_str());
    } catch (const Interrupted& e) {
      say(fmt::format("kernel build: interrupted by signal {}: the build was stopped and its files removed",
                      e.signo()));
      return 128 + e.signo();
    }
    return 0;
  }
  if (ls->parsed()) {
    auto kernels = assets::list_cached_kernels();
    if (kernels.empty()) {
      say("no kernels cached in " + (assets::cache_dir() / "kernels").string() +
          "; run `kestrel kernel fetch` (or `kestrel kernel build`)");
      return 0;
    }
    for (const auto& k : kernels) std::printf("%s\t%s\t%s\n", k.release.c_str(), k.image.c_str(), k.source.c_str());
    return 0;
  }
  return kExitUsage;
}

}  // namespace kestrel::cli

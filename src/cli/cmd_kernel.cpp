// kestrel kernel fetch | build | ls | rm
#include <csignal>
#include <cstdio>

#include "assets/cache.hpp"
#include "assets/kernel.hpp"
#include "assets/kernel_build.hpp"
#include "assets/kernel_store.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "util/error.hpp"
#include "util/signals.hpp"
#include "util/strings.hpp"

namespace kestrel::cli {

namespace {

const char* kKernelHelp = R"(Manage guest kernels (docs/kernels.md), kept in kestrel's cache (`kestrel
cache --help`). Which one a run boots is the `kernel` setting (--kernel,
KESTREL_KERNEL, kestrel.toml): empty for Debian's (the newest that `fetch`
cached), `lean` for the lean kernel (the newest version's latest `build`), a
release that `ls` lists, or a path to a vmlinux/bzImage.
)";

// After a build: the other lean kernels stay cached; say which, and which
// one `--kernel lean` takes if it is not the one just built.
void note_other_lean_kernels(const assets::Kernel& built) {
  std::vector<assets::Kernel> kernels = assets::list_cached_kernels();
  std::vector<std::string_view> roles = assets::cached_kernel_roles(kernels);
  std::vector<std::string> others;
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (!kernels[i].lean || kernels[i].release == built.release) continue;
    others.push_back(kernels[i].release);
    if (roles[i] == assets::kLeanKernel)
      say(fmt::format("kernel build: note: `--kernel lean` selects {} (built later); `--kernel {}` selects this one",
                      kernels[i].release, built.release));
  }
  if (!others.empty())
    say(fmt::format("kernel build: other lean kernels stay cached: {} (`kestrel kernel rm RELEASE` removes one)",
                    join(others, ", ")));
}

}  // namespace

int cmd_kernel(const Args& args) {
  CLI::App app(kKernelHelp, "kestrel kernel");
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
  auto* ls = app.add_subcommand(
      "ls",
      "list cached kernels, one a line: release, image, source (debian:PACKAGE or lean:PACKAGE) and what\n"
      "selects it (`default`: an empty `kernel` setting; `lean`: --kernel lean; `-`: its release only);\n"
      "Debian's first, newest first, then the lean ones");
  std::vector<std::string> to_remove;
  auto* rm = app.add_subcommand(
      "rm", "remove cached kernels (e.g. lean kernels of an older kernel/lean.config that `ls` marks `-`)");
  rm->add_option("RELEASE", to_remove, "a release `kestrel kernel ls` lists")->required();
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
      note_other_lean_kernels(k);
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
    std::vector<std::string_view> roles = assets::cached_kernel_roles(kernels);
    for (size_t i = 0; i < kernels.size(); ++i) {
      std::string role = roles[i].empty() ? "-" : std::string(roles[i]);
      std::printf("%s\t%s\t%s\t%s\n", kernels[i].release.c_str(), kernels[i].image.c_str(), kernels[i].source.c_str(),
                  role.c_str());
    }
    return 0;
  }
  if (rm->parsed()) {
    for (const std::string& release : to_remove) {
      assets::remove_cached_kernel(release);
      say("removed kernel " + release);
    }
    return 0;
  }
  return kExitUsage;
}

}  // namespace kestrel::cli

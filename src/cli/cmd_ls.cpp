// kestrel ls [--json], kestrel gc, kestrel hold: this user's deployments.
#include <fmt/format.h>
#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "assets/kernel_store.hpp"
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "deploy/registry.hpp"
#include "deploy/teardown.hpp"
#include "image/store.hpp"
#include "util/allocation.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/json.hpp"
#include "util/signals.hpp"
#include "util/strings.hpp"

namespace kestrel::cli {

namespace {

std::string human_age(int64_t s) {
  if (s < 0) return "?";
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  if (s < 172800) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

// A topology node's state: running while its QEMU lives, else dead.
const char* node_state(const deploy::DeploymentInfo& d, const deploy::VmRecord& vm) {
  return std::find(d.live_pids.begin(), d.live_pids.end(), vm.pid) != d.live_pids.end() ? "running" : "dead";
}

}  // namespace

int cmd_ls(const Args& args) {
  bool json = false;
  CLI::App app(
      "List this user's deployments: VM names, state, age, directory, QEMU pids.\n\n"
      "States: running (its kestrel run is alive), kept (left running after the run for\n"
      "inspection), orphaned (its runner died; `kestrel gc` removes it), dead (its VMs are\n"
      "gone, e.g. a failed run kept for its logs; `kestrel gc` removes the leftovers).\n"
      "A topology (kestrel up) is one deployment; its nodes follow on lines of their own:\n"
      "name, running or dead, QEMU pid, the node's directory (console.log in it).\n",
      "kestrel ls");
  app.add_flag("--json", json, "print a JSON array of {dir, names, state, age_seconds, pids, exit_status, command}");
  if (!parse(app, args)) return 0;

  auto all = deploy::list_deployments();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : all) {
      nlohmann::json j;
      j["dir"] = d.dir.string();
      j["state"] = deploy::liveness_name(d.liveness);
      j["age_seconds"] = d.age_seconds;
      j["pids"] = d.live_pids;
      j["names"] = nlohmann::json::array();
      if (d.state) {
        for (const auto& vm : d.state->vms) j["names"].push_back(vm.name);
        j["kind"] = d.state->kind;
        if (d.state->kind == "topology") {
          j["nodes"] = nlohmann::json::array();
          for (const auto& vm : d.state->vms)
            j["nodes"].push_back({{"name", vm.name}, {"pid", vm.pid}, {"state", node_state(d, vm)}});
        }
        j["command"] = d.state->command;
        j["exit_status"] = d.state->exit_status ? nlohmann::json(*d.state->exit_status) : nlohmann::json();
      } else {
        j["problem"] = d.problem;
      }
      out.push_back(std::move(j));
    }
    std::printf("%s\n", dump_json(out, 2).c_str());
    return 0;
  }
  if (all.empty()) return 0;
  std::printf("%-28s %-9s %5s %-8s %s\n", "NAME", "STATE", "AGE", "PID", "DIR");
  for (const auto& d : all) {
    std::string names, pids;
    if (d.state) {
      for (const auto& vm : d.state->vms) names += (names.empty() ? "" : ",") + vm.name;
    }
    for (int pid : d.live_pids) pids += (pids.empty() ? "" : ",") + std::to_string(pid);
    std::printf("%-28s %-9s %5s %-8s %s\n", names.empty() ? "-" : names.c_str(), deploy::liveness_name(d.liveness),
                human_age(d.age_seconds).c_str(), pids.empty() ? "-" : pids.c_str(), d.dir.c_str());
    // A topology's nodes, one line each: a node that died while the others
    // run shows as dead (its console log is in DIR/NODE/console.log).
    if (d.state && d.state->kind == "topology")
      for (const auto& vm : d.state->vms)
        std::printf("  %-26s %-9s %5s %-8s %s\n", vm.name.c_str(), node_state(d, vm), "",
                    vm.pid > 0 ? std::to_string(vm.pid).c_str() : "-", (d.dir / vm.name).c_str());
  }
  return 0;
}

int cmd_gc(const Args& args) {
  bool all = false, dry_run = false;
  CLI::App app(
      "Destroy deployments nobody needs: orphaned ones (their runner died), kept ones past\n"
      "their time to live (KESTREL_KEEP_TTL: seconds, or a number with s, m, h or d; default\n"
      "2h) and leftovers of dead VMs (failed runs keep their directory for its logs). Running\n"
      "runs are never touched. Every other kestrel command does the same cheaply at start,\n"
      "except that it leaves a dead VM's directory until its time to live has passed.\n"
      "Prints one line per deployment: destroyed DIR (STATE).\n"
      "It also removes superseded images (by `kestrel image build --refresh`, or by a newer\n"
      "image of the same recipe file) that no VM uses\n"
      "(with their templates), and what image and lean kernel builds that died left:\n"
      "removed image NAME (ID), removed N abandoned image|kernel build(s) (with --dry-run:\n"
      "would remove abandoned image build DIR).\n",
      "kestrel gc");
  app.add_flag("--all", all, "also destroy kept deployments within their time to live");
  app.add_flag("-n,--dry-run", dry_run, "only print what would be destroyed");
  if (!parse(app, args)) return 0;
  deploy::GcPolicy policy;
  policy.all = all;
  policy.keep_ttl_seconds = deploy::default_keep_ttl();
  auto print = [](const std::filesystem::path& dir, const char* liveness) {
    std::printf("destroyed %s (%s)\n", dir.c_str(), liveness);
    std::fflush(stdout);
  };
  auto chosen = deploy::collect_garbage(policy, dry_run, print);
  if (dry_run) {
    for (const auto& d : chosen)
      std::printf("would destroy %s (%s)\n", d.dir.c_str(), deploy::liveness_name(d.liveness));
    for (const auto& i : image::list_images())
      if (!i.current && image::image_users(i.id).empty())
        std::printf("would remove image %s (%s)\n", i.name.c_str(), i.id.c_str());
    for (const auto& b : image::abandoned_image_builds())
      std::printf("would remove abandoned image build %s\n", b.c_str());
    return 0;
  }
  image::ImageSweep images = image::sweep_images(
      false, [](const image::ImageInfo& i) { std::printf("removed image %s (%s)\n", i.name.c_str(), i.id.c_str()); });
  if (images.builds_removed) std::printf("removed %zu abandoned image build(s)\n", images.builds_removed);
  // What `kestrel kernel build`s that died left (~1.5 GB trees, lock files).
  assets::KernelBuildSweep kernels = assets::sweep_kernel_builds();
  if (kernels.builds_removed) std::printf("removed %zu abandoned kernel build(s)\n", kernels.builds_removed);
  return 0;
}

// ---- kestrel hold: wait while kept VMs remain. A Slurm batch script ends
// with it so that the job, and with it the VMs of its failed tests, lives on
// for debugging (docs/scale-out.md): when the job's steps end, Slurm kills
// what is left of them, kept VMs included. The hold ends when the last kept
// VM is destroyed or expires; a signal (scancel, the job's time limit)
// destroys them all first.

namespace {

constexpr const char* kHoldHelp =
    "Wait while kept VMs remain: in a Slurm job, those its runs kept (a failed test's VM,\n"
    "or --keep always); elsewhere every kept VM of this user (the runtime dir). It ends with\n"
    "status 0 once none is left: each goes with `kestrel destroy`, or when its time to live\n"
    "(KESTREL_KEEP_TTL, default 2h) has passed. SIGTERM, SIGINT or SIGHUP (scancel, the job's\n"
    "time limit) destroy them and end it with 128+N.\n"
    "\n"
    "The last line of a batch script, so that the job holds its allocation while a failure's\n"
    "VM is looked at (docs/scale-out.md):\n"
    "  kestrel run -- ./test || status=$?\n"
    "  kestrel hold\n"
    "  exit ${status:-0}\n"
    "It prints, for each VM, the command that reaches it from a login node:\n"
    "  srun --jobid JOB --overlap -w NODE kestrel exec NAME 'CMD' -f DIR\n";

// The kept deployments this hold is for.
std::vector<deploy::DeploymentInfo> held(const std::string& job) {
  std::vector<deploy::DeploymentInfo> out;
  for (auto& d : deploy::list_deployments())
    if (d.liveness == deploy::Liveness::kKept && d.state && (job.empty() || d.state->slurm_job == job))
      out.push_back(std::move(d));
  return out;
}

std::string vm_name(const deploy::DeploymentInfo& d) {
  return d.state && !d.state->vms.empty() ? d.state->vms.front().name : d.dir.filename().string();
}

}  // namespace

int cmd_hold(const Args& args) {
  CLI::App app(kHoldHelp, "kestrel hold");
  if (!parse(app, args)) return 0;
  SignalFd signals({SIGINT, SIGTERM, SIGHUP});
  Allocation a = current_allocation();
  auto kept = held(a.job);
  std::string what = a.job.empty() ? "" : " of Slurm job " + a.job;
  if (kept.empty()) {
    say("no kept VM" + what + " to hold for");
    return 0;
  }
  say(fmt::format("holding while {} kept VM(s){} remain (each ends with `kestrel destroy -f DIR`):", kept.size(),
                  what));
  std::string self = self_command();
  for (const auto& d : kept) {
    std::string dir = shell_quote(d.dir.string());
    if (a.job.empty())
      say(fmt::format("  {}: {} exec {} 'CMD' -f {}", vm_name(d), self, vm_name(d), dir));
    else
      say(fmt::format("  {}: srun --jobid {} --overlap{} {} exec {} 'CMD' -f {}", vm_name(d), a.job,
                      a.node.empty() ? "" : " -w " + a.node, self, vm_name(d), dir));
  }
  deploy::GcPolicy expired;
  expired.keep_ttl_seconds = deploy::default_keep_ttl();
  try {
    while (!kept.empty()) {
      signals.sleep_or_throw(1000);
      deploy::sweep_quietly(expired);  // those past their time to live go
      kept = held(a.job);
    }
  } catch (const Interrupted& e) {
    kept = held(a.job);
    std::vector<std::filesystem::path> dirs;
    for (const auto& d : kept) dirs.push_back(d.dir);
    const char* abbrev = sigabbrev_np(e.signo());
    say(fmt::format("interrupted by {}: destroying {} kept VM(s)",
                    abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(e.signo()), dirs.size()));
    deploy::destroy_deployments(dirs, Deadline::after(std::chrono::seconds(20)));
    return 128 + e.signo();
  }
  say("no kept VM" + what + " left");
  return 0;
}

}  // namespace kestrel::cli

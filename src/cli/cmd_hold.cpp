// kestrel hold: wait while kept VMs remain. A Slurm batch script ends with it
// so that the job, and with it the VMs of its failed tests, lives on for
// debugging (docs/scale-out.md): when the job's steps end, Slurm kills what
// is left of them, kept VMs included. The hold ends when the last kept VM is
// destroyed or expires; a signal (scancel, the job's time limit) destroys
// them all first.
#include <fmt/format.h>
#include <signal.h>
#include <string.h>

#include <CLI/CLI.hpp>
#include <algorithm>

#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "deploy/registry.hpp"
#include "deploy/teardown.hpp"
#include "util/allocation.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/signals.hpp"
#include "util/strings.hpp"

namespace kestrel::cli {

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

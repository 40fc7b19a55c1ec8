// All deployments of this user (the runtime dir), classified by liveness:
// what `kestrel ls` shows and what `kestrel gc` cleans.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "deploy/deployment.hpp"
#include "deploy/teardown.hpp"

namespace kestrel::deploy {

enum class Liveness {
  kRunning,   // its runner lives (holds runner.lock)
  kKept,      // the run finished, the VM was kept and still runs
  kOrphaned,  // the runner died without finishing (SIGKILL, crash)
  kDead,      // its VMs are gone (kept, then died; or failed: left for its logs); or a half-made directory
};
const char* liveness_name(Liveness l);

struct DeploymentInfo {
  fs::path dir;
  std::optional<State> state;  // nullopt: unreadable or missing state file
  Liveness liveness = Liveness::kDead;
  int64_t age_seconds = 0;
  std::vector<int> live_pids;  // QEMU pids that are still ours and alive
  std::string problem;         // why the state could not be read, if it could not
};

// Inspects one deployment directory.
DeploymentInfo inspect(const fs::path& dir);

// Every deployment under runtime_dir(), oldest first.
std::vector<DeploymentInfo> list_deployments();

struct GcPolicy {
  bool all = false;  // also kept deployments within their time to live
  int64_t keep_ttl_seconds = 2 * 3600;
  // Dead deployments (kept for their logs) go at once (`kestrel gc`), or only
  // once past keep_ttl_seconds (the sweep: the user may still read the logs
  // that the failed run pointed to).
  bool dead_at_once = true;
  // Half-made directories (no state file yet) younger than this are left
  // alone: a runner may be creating them right now.
  int64_t grace_seconds = 60;
};

// True if gc should remove this deployment.
bool is_garbage(const DeploymentInfo& info, const GcPolicy& policy);

// Removes what is_garbage() selects (VMs killed in parallel), never touching
// a deployment whose runner is alive: the runner lock is taken first. Returns
// what was chosen for removal (with dry_run: what would be); on_destroyed
// hears of each one actually removed, as it happens (the errors of the others
// are thrown at the end).
std::vector<DeploymentInfo> collect_garbage(const GcPolicy& policy, bool dry_run, const OnDestroyed& on_destroyed = {});

// The cheap sweep every kestrel command runs at start: orphans, and kept or
// dead deployments past their time to live (policy.dead_at_once is ignored);
// errors are swallowed (a sweep must never make an unrelated command fail).
void sweep_quietly(GcPolicy policy);

// Default time to live of kept deployments: $KESTREL_KEEP_TTL (seconds, or
// with a suffix s/m/h/d), else 2 h.
int64_t default_keep_ttl();

}  // namespace kestrel::deploy

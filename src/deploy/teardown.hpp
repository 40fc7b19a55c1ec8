// Tearing deployments down: kill their VMs (all at once), wait until they
// are gone, remove their directories. `kestrel destroy`, `kestrel gc`, the
// start-up sweep and a finishing `kestrel run` all go through here, and all
// hold (or wait for) a deployment's runner lock before removing it, so they
// never race one another. The kills and removals themselves are the checked
// ones of deploy/reaper.hpp.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <vector>

#include "deploy/deployment.hpp"
#include "util/deadline.hpp"
#include "util/fd.hpp"
#include "util/lockfile.hpp"

namespace kestrel::deploy {

// Waits until every pidfd reports its process gone; throws at the deadline.
void wait_dead(std::vector<UniqueFd>& pidfds, Deadline deadline, const fs::path& dir);

// Called with each deployment torn down, as it was just before (liveness).
using OnDestroyed = std::function<void(const fs::path& dir, const char* liveness)>;

// Kills every VM of these deployments (in parallel: all are killed first,
// then waited for) and removes the directories. Paths are resolved first
// (a symlink names the deployment it points to). A deployment whose runner
// is alive is removed once the runner has let go of it (it notices its VM
// died and exits), or at the deadline. A missing directory is skipped (the
// CLI says "no such deployment" before calling this). Refuses, before
// anything is killed, a directory that is not one of kestrel's deployments
// (check_ours). Other errors are collected; the rest is still torn down, and
// a deployment whose VM could not be killed is not removed.
void destroy_deployments(const std::vector<fs::path>& dirs, Deadline deadline, const OnDestroyed& on_destroyed = {});
void destroy_deployment(const fs::path& dir, Deadline deadline);

// A deployment that this process holds the runner lock of (or took it from
// a dead runner): kill its VMs and remove it.
struct LockedDeployment {
  fs::path dir;
  std::optional<State> state;  // nullopt: unreadable; VMs are found by scanning
  LockFile lock;
  const char* liveness = "";  // for on_destroyed
};
void tear_down(std::vector<LockedDeployment>& deployments, Deadline deadline, const OnDestroyed& on_destroyed = {});

// A runner's hold on its deployment: tears it down on destruction (also
// when the run throws) unless the run marked it kept or failed.
class RunGuard {
 public:
  // `warn` gets a teardown error (a destructor cannot throw it).
  RunGuard(Deployment& deployment, std::function<void(const std::string&)> warn)
      : deployment_(deployment), warn_(std::move(warn)) {}
  RunGuard(const RunGuard&) = delete;
  RunGuard& operator=(const RunGuard&) = delete;
  ~RunGuard();

  // The run finished and its VM stays up for inspection (status "kept").
  void keep(int exit_status);
  // The VM failed (died, did not boot): the directory stays for its logs
  // (status "failed") until `kestrel gc` or the time to live removes it.
  void keep_failed(int exit_status);
  bool kept() const { return kept_; }

 private:
  Deployment& deployment_;
  std::function<void(const std::string&)> warn_;
  bool kept_ = false;
  bool failed_ = false;
};

}  // namespace kestrel::deploy

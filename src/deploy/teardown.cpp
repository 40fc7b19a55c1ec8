#include "deploy/teardown.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "deploy/reaper.hpp"
#include "deploy/registry.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/trace.hpp"

namespace kestrel::deploy {

namespace {

// Waits until nobody holds DIR/runner.lock (or DIR is gone), then holds it.
// Returns an unlocked LockFile if the deadline passed first or DIR vanished.
LockFile wait_for_runner(const fs::path& dir, Deadline deadline) {
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (!fs::exists(dir)) return LockFile();
    try {
      LockFile lock = LockFile::try_lock(dir / "runner.lock");
      if (lock.locked()) return lock;
    } catch (const Error&) {
      if (!fs::exists(dir)) return LockFile();  // removed under us: fine
      throw;
    }
    if (deadline.expired()) return LockFile();
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

void append_error(std::string& errors, const std::string& e) { errors += (errors.empty() ? "" : "; ") + e; }

}  // namespace

void wait_dead(std::vector<UniqueFd>& pidfds, Deadline deadline, const fs::path& dir) {
  for (auto& pidfd : pidfds) {
    struct pollfd p = {pidfd.get(), POLLIN, 0};
    while (::poll(&p, 1, deadline.poll_timeout_ms()) < 0 && errno == EINTR) {
    }
    if (!(p.revents & POLLIN)) fail("a VM of {} did not die within the deadline", dir.string());
  }
}

// Kills every VM of every deployment first, then waits for each and
// removes it (after `before_removal`, if any): teardown runs in parallel. A
// deployment whose kill failed is not removed.
template <typename BeforeRemoval>
void kill_wait_remove(std::vector<LockedDeployment>& targets, Deadline deadline, const OnDestroyed& on_destroyed,
                      BeforeRemoval before_removal) {
  std::string errors;
  std::vector<std::optional<std::vector<UniqueFd>>> dying;
  for (const auto& t : targets) {
    try {
      dying.push_back(kill_deployment_vms(t.dir, t.state ? &*t.state : nullptr, true));
    } catch (const Error& e) {
      append_error(errors, e.what());
      dying.emplace_back();
    }
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    auto& t = targets[i];
    if (!dying[i]) continue;
    try {
      wait_dead(*dying[i], deadline, t.dir);
      before_removal(t);
      remove_deployment_dir(t.dir);
      if (on_destroyed) on_destroyed(t.dir, t.liveness);
    } catch (const Error& e) {
      append_error(errors, e.what());
    }
  }
  if (!errors.empty()) throw Error(errors);
}

void tear_down(std::vector<LockedDeployment>& deployments, Deadline deadline, const OnDestroyed& on_destroyed) {
  kill_wait_remove(deployments, deadline, on_destroyed, [](LockedDeployment&) {});
}

void destroy_deployments(const std::vector<fs::path>& dirs, Deadline deadline, const OnDestroyed& on_destroyed) {
  // Resolve and check every directory first, so that one that is not a
  // deployment of ours is refused before anything is killed.
  std::vector<fs::path> resolved;
  for (const auto& dir : dirs) {
    fs::path real;
    try {
      real = resolve_deployment_dir(dir);
    } catch (const Error&) {
      if (::access(dir.c_str(), F_OK) != 0 && errno == ENOENT) continue;  // gone meanwhile
      throw;
    }
    check_ours(real);
    if (std::find(resolved.begin(), resolved.end(), real) == resolved.end()) resolved.push_back(real);
  }
  std::vector<LockedDeployment> targets;
  for (const auto& dir : resolved) {
    DeploymentInfo info = inspect(dir);
    LockFile lock;
    try {
      lock = LockFile::try_lock(dir / "runner.lock");
    } catch (const Error&) {
      if (!fs::exists(dir)) continue;  // removed meanwhile (by gc, say)
      throw;
    }
    targets.push_back({dir, info.state, std::move(lock), liveness_name(info.liveness)});
  }
  kill_wait_remove(targets, deadline, on_destroyed, [&](LockedDeployment& t) {
    // A live runner notices that its VM died, records that and exits;
    // removing the directory under it would only make it fail noisily.
    if (!t.lock.locked()) t.lock = wait_for_runner(t.dir, deadline);
    // A runner that was still launching may have started a QEMU since.
    std::vector<UniqueFd> late = kill_deployment_vms(t.dir, nullptr, true);
    wait_dead(late, deadline, t.dir);
  });
}

void destroy_deployment(const fs::path& dir, Deadline deadline) { destroy_deployments({dir}, deadline); }

void RunGuard::keep(int exit_status) {
  deployment_.state().status = "kept";
  deployment_.state().exit_status = exit_status;
  deployment_.save();
  kept_ = true;
}

void RunGuard::keep_failed(int exit_status) {
  deployment_.state().status = "failed";
  deployment_.state().exit_status = exit_status;
  deployment_.save();
  kept_ = true;
  failed_ = true;
}

RunGuard::~RunGuard() {
  if (kept_ && !failed_) return;
  try {
    // We hold the runner lock: nobody else tears this deployment down.
    std::vector<UniqueFd> dying = kill_deployment_vms(deployment_.dir(), &deployment_.state(), false);
    wait_dead(dying, Deadline::after(std::chrono::seconds(10)), deployment_.dir());
    // Our QEMU was a Child of the machine, killed and reaped when it went
    // (before this guard), or recorded in the state and killed above: no
    // need to look for another in /proc (a scan costs milliseconds per run).
    if (!failed_) remove_deployment_dir(deployment_.dir(), false);
    trace("torn down");
  } catch (const std::exception& e) {
    if (warn_) warn_(e.what());
  }
}

}  // namespace kestrel::deploy

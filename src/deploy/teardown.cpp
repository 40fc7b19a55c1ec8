#include "deploy/teardown.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

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

std::vector<UniqueFd> kill_vms(const fs::path& dir, const State* state, bool scan) {
  std::vector<UniqueFd> dying;
  for (int pid : find_vm_processes(dir, state, scan)) {
    UniqueFd pidfd = open_pidfd(pid);
    if (!pidfd) continue;  // already gone
    ::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGKILL, nullptr, 0);
    dying.push_back(std::move(pidfd));
  }
  return dying;
}

void wait_dead(std::vector<UniqueFd>& pidfds, Deadline deadline, const fs::path& dir) {
  for (auto& pidfd : pidfds) {
    struct pollfd p = {pidfd.get(), POLLIN, 0};
    while (::poll(&p, 1, deadline.poll_timeout_ms()) < 0 && errno == EINTR) {
    }
    if (!(p.revents & POLLIN)) fail("a VM of {} did not die within the deadline", dir.string());
  }
}

void tear_down(std::vector<LockedDeployment>& deployments, Deadline deadline) {
  // Kill every VM first, then wait for all of them: teardown runs in parallel.
  std::vector<std::vector<UniqueFd>> dying;
  for (const auto& d : deployments) dying.push_back(kill_vms(d.dir, d.state ? &*d.state : nullptr, true));
  std::string errors;
  for (size_t i = 0; i < deployments.size(); ++i) {
    try {
      wait_dead(dying[i], deadline, deployments[i].dir);
      remove_tree(deployments[i].dir);
    } catch (const Error& e) {
      append_error(errors, e.what());
    }
  }
  if (!errors.empty()) throw Error(errors);
}

void destroy_deployments(const std::vector<fs::path>& dirs, Deadline deadline) {
  // Read every state file first, so that a directory that is not a
  // deployment is refused before anything is killed.
  std::vector<LockedDeployment> targets;
  for (const auto& dir : dirs) {
    if (!fs::exists(dir)) continue;
    Deployment d = Deployment::open(dir);
    targets.push_back({d.dir(), d.state(), LockFile::try_lock(d.runner_lock_file())});
  }
  std::vector<std::vector<UniqueFd>> dying;
  for (const auto& t : targets) dying.push_back(kill_vms(t.dir, &*t.state, true));
  std::string errors;
  for (size_t i = 0; i < targets.size(); ++i) {
    auto& t = targets[i];
    try {
      wait_dead(dying[i], deadline, t.dir);
      // A live runner notices that its VM died, records that and exits;
      // removing the directory under it would only make it fail noisily.
      if (!t.lock.locked()) t.lock = wait_for_runner(t.dir, deadline);
      remove_tree(t.dir);
    } catch (const Error& e) {
      append_error(errors, e.what());
    }
  }
  if (!errors.empty()) throw Error(errors);
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
    std::vector<UniqueFd> dying = kill_vms(deployment_.dir(), &deployment_.state(), false);
    wait_dead(dying, Deadline::after(std::chrono::seconds(10)), deployment_.dir());
    if (!failed_) remove_tree(deployment_.dir());
    trace("torn down");
  } catch (const std::exception& e) {
    if (warn_) warn_(e.what());
  }
}

}  // namespace kestrel::deploy

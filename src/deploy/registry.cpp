#include "deploy/registry.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "config/keys.hpp"
#include "deploy/reaper.hpp"
#include "deploy/teardown.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"

namespace kestrel::deploy {

namespace {

int64_t mtime_of(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? st.st_mtim.tv_sec : unix_seconds();
}

}  // namespace

const char* liveness_name(Liveness l) {
  switch (l) {
    case Liveness::kRunning:
      return "running";
    case Liveness::kKept:
      return "kept";
    case Liveness::kOrphaned:
      return "orphaned";
    case Liveness::kDead:
      return "dead";
  }
  return "?";
}

DeploymentInfo inspect(const fs::path& dir) {
  DeploymentInfo info;
  info.dir = dir;
  int64_t now = unix_seconds();
  try {
    Deployment d = Deployment::open(dir);
    info.state = d.state();
  } catch (const Error& e) {
    info.problem = e.what();
  }
  if (!info.state) {
    info.age_seconds = std::max<int64_t>(0, now - mtime_of(dir));
    info.liveness = Liveness::kDead;
    return info;
  }
  // Times the state file does not know (missing, or out of range: State
  // reads them as 0) come from the files themselves.
  State& s = *info.state;
  if (s.created <= 0) s.created = mtime_of(dir);
  if (s.updated <= 0) s.updated = mtime_of(dir / "deployment.json");
  info.age_seconds = std::max<int64_t>(0, now - s.created);
  for (const auto& vm : s.vms) {
    if (is_vm_process(vm.pid, dir / vm.name)) info.live_pids.push_back(vm.pid);
  }
  if (is_locked(dir / "runner.lock")) {
    info.liveness = Liveness::kRunning;
  } else if (s.status == "kept") {
    info.liveness = info.live_pids.empty() ? Liveness::kDead : Liveness::kKept;
  } else if (s.status == "starting" || s.status == "running") {
    info.liveness = Liveness::kOrphaned;
  } else {
    info.liveness = Liveness::kDead;
  }
  return info;
}

std::vector<DeploymentInfo> list_deployments() {
  std::vector<DeploymentInfo> out;
  fs::path base = runtime_dir();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    if (!entry.is_directory(ec) || entry.is_symlink(ec)) continue;
    std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') {
      // A deployment being born (".new-NAME"); only a long-dead one is listed.
      if (name.rfind(".new-", 0) != 0) continue;
      if (unix_seconds() - mtime_of(entry.path()) < 60 || is_locked(entry.path() / "runner.lock")) continue;
    }
    // Only kestrel's own: anything else in the runtime dir is not listed and
    // never removed (docs/deployment-dir.md).
    if (!why_not_ours(entry.path()).empty()) continue;
    out.push_back(inspect(entry.path()));
  }
  std::sort(out.begin(), out.end(),
            [](const DeploymentInfo& a, const DeploymentInfo& b) { return a.age_seconds > b.age_seconds; });
  return out;
}

bool is_garbage(const DeploymentInfo& info, const GcPolicy& policy) {
  switch (info.liveness) {
    case Liveness::kRunning:
      return false;
    case Liveness::kOrphaned:
      return true;
    case Liveness::kDead:
      if (!info.state) return info.age_seconds >= policy.grace_seconds;
      return policy.all || policy.dead_at_once || unix_seconds() - info.state->updated >= policy.keep_ttl_seconds;
    case Liveness::kKept:
      return policy.all || unix_seconds() - info.state->updated >= policy.keep_ttl_seconds;
  }
  return false;
}

std::vector<DeploymentInfo> collect_garbage(const GcPolicy& policy, bool dry_run, const OnDestroyed& on_destroyed) {
  std::vector<DeploymentInfo> chosen;
  std::vector<LockedDeployment> locked;
  for (auto& info : list_deployments()) {
    if (!is_garbage(info, policy)) continue;
    if (dry_run) {
      chosen.push_back(std::move(info));
      continue;
    }
    // Holding the runner lock guarantees no runner is in there (a runner never
    // takes it back), so gc, destroy and a finishing run cannot race.
    LockFile lock = LockFile::try_lock(info.dir / "runner.lock");
    if (!lock.locked()) continue;
    locked.push_back({info.dir, info.state, std::move(lock), liveness_name(info.liveness)});
    chosen.push_back(std::move(info));
  }
  if (!dry_run) tear_down(locked, Deadline::after(std::chrono::seconds(10)), on_destroyed);
  return chosen;
}

void sweep_quietly(GcPolicy policy) {
  policy.dead_at_once = false;
  try {
    collect_garbage(policy, false);
  } catch (const std::exception&) {
    // A sweep must never make an unrelated command fail; `kestrel gc` reports.
  }
}

int64_t default_keep_ttl() {
  // Parsed by config's checks: a value that cannot be represented (inf, nan,
  // 1e30s) is an error, never a TTL that has expired everything.
  const char* env = std::getenv(config::kKeepTtlVariable);
  if (!env || !*env) return config::kDefaultKeepTtl;
  try {
    return config::parse_duration(env);
  } catch (const Error& e) {
    fail("{}={}: {}", config::kKeepTtlVariable, env, e.what());
  }
}

}  // namespace kestrel::deploy

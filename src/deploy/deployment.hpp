// A deployment: the directory that holds one run's VMs, their sockets and
// logs and a state file. Layout and state
// format: docs/deployment-dir.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "util/deadline.hpp"
#include "util/fd.hpp"
#include "util/lockfile.hpp"
#include "vm/paths.hpp"

namespace kestrel::deploy {

namespace fs = std::filesystem;

constexpr int kStateVersion = 1;

// Where this user's deployments live: $KESTREL_RUNTIME_DIR, else
// $XDG_RUNTIME_DIR/kestrel, else /tmp/kestrel-<uid>. Created 0700 and
// checked to belong to us.
fs::path runtime_dir();

struct VmRecord {
  std::string name;
  int pid = 0;  // QEMU's pid (0 before launch)
  std::string accel;
  std::string start;  // "warm" (a clone of a template) or "cold" (booted)
  std::string image;  // the id of the image that is its root disk; "" for the host's root
};

struct State {
  int version = kStateVersion;
  std::string kind = "run";
  std::string status = "starting";  // starting | running | kept | failed (docs/deployment-dir.md)
  int64_t created = 0;              // unix seconds
  int64_t updated = 0;
  int runner_pid = 0;
  std::string keep = "on-failure";
  std::vector<std::string> command;
  // Where and with what environment the program ran ("K=V" entries, as the
  // guest got them), so that `kestrel exec` runs commands the same way.
  // Absent in deployments of older kestrels. The environment may hold
  // secrets: the state file is 0600 in a 0700 directory.
  std::optional<std::string> cwd;
  std::optional<std::vector<std::string>> env;
  std::vector<VmRecord> vms;
  std::optional<int> exit_status;  // set when the run finished (kept ones)
  // The Slurm job the runner ran in (SLURM_JOB_ID), "" outside one: what
  // `kestrel hold` waits for (docs/scale-out.md).
  std::string slurm_job;

  std::string to_json() const;
  static State from_json(const std::string& text, const fs::path& origin);
};

class Deployment {
 public:
  // Creates a fresh deployment directory named `name` under runtime_dir()
  // and takes its runner lock. Throws if the name is taken.
  static Deployment create(const std::string& name);
  // Opens an existing one; throws unless `dir` holds a kestrel state file.
  static Deployment open(const fs::path& dir);

  const fs::path& dir() const { return dir_; }
  fs::path state_file() const { return dir_ / "deployment.json"; }
  fs::path runner_lock_file() const { return dir_ / "runner.lock"; }
  vm::VmPaths vm_paths(const std::string& vm_name) const { return vm::VmPaths{dir_ / vm_name}; }

  State& state() { return state_; }
  const State& state() const { return state_; }
  void save();  // atomically rewrites deployment.json

  // Records that VM `index` was launched: its QEMU pid, accelerator
  // ("kvm"/"tcg") and start ("warm" for a clone, else "cold"); status running.
  void note_launch(size_t index, int pid, const std::string& accel, bool clone);

  // The runner's liveness marker: held while the runner process lives.
  void release_runner_lock() { runner_lock_.unlock(); }

 private:
  fs::path dir_;
  State state_;
  LockFile runner_lock_;
};

// True if `pid` is a QEMU process of this user of the VM whose files live in
// `vm_dir` (so a recycled pid is never mistaken for our VM).
bool is_vm_process(int pid, const fs::path& vm_dir);
// True if `pid` is a process of this user whose command line names a QMP
// socket inside the deployment `dir` (any of its VMs).
bool names_deployment(int pid, const fs::path& dir);

// The QEMU processes of the deployment in `dir` that are alive: the pids its
// state records (checked with is_vm_process), and with `scan` also every
// process of ours whose command line names a QMP socket inside `dir` (a QEMU
// whose runner was killed before it could record the pid).
std::vector<int> find_vm_processes(const fs::path& dir, const State* state, bool scan);

// Where a deployment's processes name its QMP sockets: "unix:DIR/".
std::string qmp_prefix(const fs::path& dir);

}  // namespace kestrel::deploy

// Child processes: spawn with care (own session, chosen fds only, signals
// reset) and own them: a Child that is destroyed while still running is
// killed with SIGKILL and reaped, so kestrel never leaks a QEMU by accident.
// Call release() to let a process outlive its owner on purpose.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "util/deadline.hpp"
#include "util/fd.hpp"

namespace kestrel {

struct SpawnOptions {
  std::vector<std::string> argv;                // argv[0] is looked up in PATH if it has no '/'
  std::optional<std::vector<std::string>> env;  // nullopt: inherit ours
  int stdin_fd = -1;                            // -1: /dev/null
  int stdout_fd = -1;                           // -1: inherit ours
  int stderr_fd = -1;                           // -1: inherit ours
  // Extra descriptors the child gets: {fd in parent, fd number in child}.
  std::vector<std::pair<int, int>> extra_fds;
  // setsid(): own session and process group (and, with the scheduler's
  // autogroups, a CPU group of its own, given our nice value).
  bool new_session = true;
  // SIGKILL the child when we die, whatever the cause (SIGKILL included): for
  // helpers that must never outlive their owner, e.g. a template being built.
  bool die_with_parent = false;
  // The signal it gets then: SIGTERM for a child that must clean up (mmdebstrap
  // unmounts what it mounted in its chroot).
  int death_signal = SIGKILL;
  // Root only (others get an ordinary child): the program runs in a PID and
  // mount namespace of its own below a small init of ours, PID 1 there,
  // which passes SIGTERM, SIGINT and SIGHUP on to the program's process
  // group, reaps what it leaves and ends with it. When the init ends, the
  // kernel kills whatever is left in the namespace and every mount made in
  // it vanishes: nothing the program starts (daemons, setsid()s, a tool that
  // ignores signals) outlives it. After a signal it passed on (ours, or its
  // death signal when we die) the init kills them all after
  // `contain_grace_s`. The init keeps our descriptors until it ends, locks
  // included: a lock we hold stays held while any of it lives.
  bool contain = false;
  // Started as a grandchild that init (or our subreaper) reaps: it outlives
  // us and leaves no zombie behind. spawn() returns an empty Child for it.
  bool detached = false;
  int contain_grace_s = 20;
  std::filesystem::path cwd;  // empty: inherit
  // Capabilities (CAP_*) the child and everything it runs can never have:
  // dropped from its bounding and inheritable sets before exec. What matters
  // for a root parent (a root child would get every capability); a no-op
  // for others, who have none.
  std::vector<int> drop_capabilities;
  // Signals the child starts with blocked (the mask survives exec). QEMU
  // blocks SIGTERM, SIGINT and SIGHUP so: a job scheduler that signals
  // every process of a job at once (Slurm's scancel) reaches kestrel, which
  // ends the run as interrupted and tears its VM down, instead of QEMU, whose
  // death would read as a VM failure. kestrel itself ends QEMU with SIGKILL.
  std::vector<int> blocked_signals;
};

// A pidfd for any process (not only our children): polls readable when it
// exits. An invalid UniqueFd if the process is gone (or pidfds are missing).
UniqueFd open_pidfd(pid_t pid);

// Waits until `pidfd` polls readable (the process exited) or the deadline
// passes; true if it exited. A pidfd of -1 never does.
bool wait_exited(int pidfd, Deadline deadline);
// The same without waiting.
inline bool has_exited(int pidfd) { return wait_exited(pidfd, Deadline::after(std::chrono::milliseconds(0))); }

// argv/envp for exec*(): pointers into `v`, which must outlive the result.
std::vector<char*> c_strings(const std::vector<std::string>& v);

// A pipe whose both ends close on exec.
struct Pipe {
  UniqueFd read, write;
};
Pipe make_pipe();

// Exit status as a shell reports it: the code, or 128+N for death by signal N.
int shell_status(int wait_status);

// Replaces this process with `file` (looked up in PATH if it has no '/')
// run with `argv`, after flushing stdio. Returns only if that failed, with
// the errno value.
int exec_replacing(const std::string& file, const std::vector<std::string>& argv);

class Child {
 public:
  Child() = default;
  // Spawns; throws Error if the program cannot be started (exec failure included).
  static Child spawn(const SpawnOptions& options);

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& other) noexcept
      : pid_(std::exchange(other.pid_, -1)), pidfd_(std::move(other.pidfd_)), status_(other.status_) {}
  Child& operator=(Child&& other) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  bool valid() const { return pid_ > 0; }
  // A pidfd that polls readable when the child exits.
  int pidfd() const { return pidfd_.get(); }

  // Waits until the child exits or the deadline passes. Returns the raw wait
  // status, or nullopt on timeout.
  std::optional<int> wait(Deadline deadline);
  // Non-blocking check.
  std::optional<int> try_wait();
  // Sends a signal to the child.
  void kill(int sig);
  // Sends a signal to the child's process group (it leads one when spawned
  // with new_session), whatever of it is left, while the child is not reaped.
  void kill_group(int sig);
  // SIGKILL and reap.
  void kill_and_reap();
  // Forget the process: it keeps running and is no longer ours to kill.
  pid_t release();

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  std::optional<int> status_;
};

}  // namespace kestrel

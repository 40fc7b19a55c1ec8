// The host side of docs/protocol.md: connect to one agent port, greet,
// set the VM up, run programs with their I/O streamed.
#pragma once

#include <filesystem>
#include <string>

#include "proto/connection.hpp"
#include "proto/messages.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/lockfile.hpp"
#include "vm/paths.hpp"

namespace kestrel::host {

// The VM went away (QEMU exited) while we waited for it.
class VmGone : public Error {
 public:
  using Error::Error;
};
// The agent did not answer in time.
class AgentTimeout : public Error {
 public:
  using Error::Error;
};

struct ExecIo {
  int stdin_fd = -1;  // forwarded when >= 0 (needs proto::kExecStdin in the request)
  int stdout_fd = 1;
  int stderr_fd = 2;
  // A signalfd for SIGINT/SIGTERM/SIGHUP (forwarded to the program) and
  // SIGWINCH (window size, for pty execs); -1 for none.
  int signal_fd = -1;
  int vm_pidfd = -1;  // QEMU's pidfd: readable when the VM is gone; -1 if not ours
  Deadline timeout = Deadline::never();
  // After a forwarded SIGINT/SIGTERM or a timeout, how long to wait for the
  // program to finish before giving up on it.
  std::chrono::milliseconds grace{2000};
};

struct ExecOutcome {
  enum class Kind {
    kExited,       // status is valid
    kStartFailed,  // message says why (e.g. cannot execute)
    kTimedOut,     // program killed (or abandoned) after ExecIo::timeout
    kInterrupted,  // we got `signo`; status valid if the program finished in the grace period
    kVmGone,       // QEMU exited
    kAgentLost,    // the channel closed or broke; message says how
  };
  Kind kind = Kind::kExited;
  proto::ExitStatus status;
  bool has_status = false;
  int signo = 0;
  std::string message;
};

class AgentClient {
 public:
  // Takes the first free port lock (starting at `first_port`), connects and
  // greets the agent. Throws VmGone if `vm_pidfd` (optional) signals QEMU's
  // exit, AgentTimeout at the deadline, Interrupted if a signal (other than
  // SIGWINCH) arrives on `signal_fd` (optional), Error otherwise.
  static AgentClient connect(const vm::VmPaths& paths, int first_port, Deadline deadline, int vm_pidfd = -1,
                             int signal_fd = -1);

  const proto::Hello& greeting() const { return greeting_; }
  int port() const { return port_; }

  // SETUP (docs/protocol.md, "Setup"): may be sent more than once per boot,
  // a root mount at most once. Throws Error with the agent's message, VmGone
  // if QEMU exits, AgentTimeout at the deadline.
  void setup(const proto::SetupRequest& request, Deadline deadline, int vm_pidfd = -1);

  // SERVICE (docs/protocol.md, "Services"): starts a service in the guest
  // root and returns once the agent says it is ready. The request is checked
  // (ServiceRequest::validate) before it is sent. The agent waits up to
  // request.timeout_ms, so `deadline` should leave it that long and more.
  // Throws like setup(); the agent's message names the service and carries
  // the last lines of its log.
  void service(const proto::ServiceRequest& request, Deadline deadline, int vm_pidfd = -1);

  // NETWORK (docs/protocol.md, "Network"): configures the guest's NICs,
  // routes, forwarding, /etc/hosts and /etc/resolv.conf. The request is
  // checked (NetworkRequest::validate) before it is sent. The agent may wait
  // up to 5 s for the NICs to appear (once per boot), so `deadline` should
  // leave it that long and more. Throws like setup().
  void network(const proto::NetworkRequest& request, Deadline deadline, int vm_pidfd = -1);

  // Round trip with a PING, for latency measurements and liveness.
  void ping(Deadline deadline);

  ExecOutcome exec(const proto::Exec& request, const ExecIo& io);

 private:
  AgentClient() = default;
  // Waits for one frame (or the VM's death, or the deadline).
  proto::Frame wait_frame(Deadline deadline, int vm_pidfd, const char* waiting_for);
  // Sends a request and waits for its answer. An ERROR throws Error: "WHAT
  // failed in the VM: MESSAGE", or MESSAGE alone without prefix_errors.
  proto::Frame request(proto::Type type, std::string_view payload, proto::Type expected, Deadline deadline,
                       int vm_pidfd, const char* what, bool prefix_errors = true);

  LockFile lock_;
  UniqueFd fd_;
  proto::Connection conn_;
  proto::Hello greeting_;
  int port_ = -1;
  uint32_t next_stream_ = 1;
};

}  // namespace kestrel::host

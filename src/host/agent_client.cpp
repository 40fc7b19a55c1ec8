#include "host/agent_client.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "host/vm_exit.hpp"
#include "proto/exec_frames.hpp"
#include "util/io.hpp"
#include "util/process.hpp"
#include "util/signals.hpp"
#include "util/socket.hpp"
#include "util/trace.hpp"

namespace kestrel::host {

using proto::Type;

namespace {

constexpr auto kHelloInterval = std::chrono::milliseconds(50);
// QEMU closes the agent sockets while it exits, a moment before its pidfd
// fires: on a closed channel, wait this long to learn whether the VM is gone.
constexpr auto kExitSettle = std::chrono::milliseconds(2000);

// After the agent channel closed: true if QEMU (vm_pidfd) exits soon.
bool vm_exiting(int vm_pidfd) { return wait_exited(vm_pidfd, Deadline::after(kExitSettle)); }

// Throws Interrupted if a signal other than SIGWINCH is pending on signal_fd.
void check_signals(int signal_fd) { sleep_or_throw(signal_fd, 0, SIGWINCH); }

}  // namespace

AgentClient AgentClient::connect(const vm::VmPaths& paths, int first_port, Deadline deadline, int vm_pidfd,
                                 int signal_fd) {
  AgentClient c;
  // One client per port: take the first free port lock.
  for (;;) {
    for (int i = 0; i < proto::kPortCount && !c.lock_.locked(); ++i) {
      int port = (first_port + i) % proto::kPortCount;
      c.lock_ = LockFile::try_lock(paths.agent_lock(port));
      if (c.lock_.locked()) c.port_ = port;
    }
    if (c.lock_.locked()) break;
    check_signals(signal_fd);
    if (deadline.expired()) throw AgentTimeout("all agent ports of the VM are busy (too many concurrent execs)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  // QEMU creates the socket early in its start-up; until then, retry.
  for (;;) {
    c.fd_ = unix_connect(paths.agent(c.port_));
    if (c.fd_) break;
    if (has_exited(vm_pidfd)) throw VmGone("QEMU exited during start-up");
    check_signals(signal_fd);
    if (deadline.expired()) throw AgentTimeout("QEMU did not create " + paths.agent(c.port_).string());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  trace("agent port connected");
  set_nonblocking(c.fd_.get(), true);
  c.conn_ = proto::Connection(c.fd_.get());

  // Say HELLO until answered: the guest drops what arrives before the agent
  // has opened its side of the port (docs/protocol.md, "Greeting").
  uint32_t nonce = 1;
  auto next_hello = Deadline::after(std::chrono::milliseconds(0));
  for (;;) {
    if (next_hello.expired()) {
      c.conn_.send(Type::kHello, 0, proto::Hello{proto::kVersion, nonce++, {}, ""}.encode());
      next_hello = Deadline::after(kHelloInterval);
    }
    while (auto f = c.conn_.next()) {
      if (f->type != Type::kHello) continue;  // leftovers of an earlier client: ignore
      c.greeting_ = proto::Hello::decode(f->payload);
      if (c.greeting_.version != proto::kVersion)
        fail("the agent speaks protocol version {}, this kestrel speaks {}; the initramfs is not ours",
             c.greeting_.version, proto::kVersion);
      return c;
    }
    if (deadline.expired()) throw AgentTimeout("the agent did not answer");
    struct pollfd p[3] = {{c.fd_.get(), POLLIN, 0}, {vm_pidfd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    int wait_ms = Deadline::earliest(deadline, next_hello).poll_timeout_ms();
    int r = ::poll(p, 3, wait_ms);  // negative fds are ignored by poll
    if (r < 0 && errno != EINTR) fail_errno("poll");
    if (p[2].revents & POLLIN) check_signals(signal_fd);
    if (vm_pidfd >= 0 && (p[1].revents & POLLIN)) throw VmGone("QEMU exited before the agent answered");
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (c.conn_.on_readable() == proto::Connection::ReadResult::kEof) {
        if (vm_exiting(vm_pidfd)) throw VmGone("QEMU exited before the agent answered");
        fail("the agent channel {} closed during the greeting", paths.agent(c.port_).string());
      }
    }
  }
}

proto::Frame AgentClient::wait_frame(Deadline deadline, int vm_pidfd, const char* waiting_for) {
  for (;;) {
    if (auto f = conn_.next()) return std::move(*f);
    struct pollfd p[2] = {{fd_.get(), static_cast<short>(POLLIN | (conn_.wants_write() ? POLLOUT : 0)), 0},
                          {vm_pidfd, POLLIN, 0}};
    int r = ::poll(p, vm_pidfd >= 0 ? 2 : 1, deadline.poll_timeout_ms());
    if (r < 0 && errno != EINTR) fail_errno("poll");
    if (r == 0 && deadline.expired()) throw AgentTimeout(std::string("no answer from the agent to ") + waiting_for);
    if (vm_pidfd >= 0 && (p[1].revents & POLLIN)) throw VmGone(std::string("QEMU exited during ") + waiting_for);
    if (p[0].revents & POLLOUT) conn_.flush();
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (conn_.on_readable() == proto::Connection::ReadResult::kEof) {
        if (vm_exiting(vm_pidfd)) throw VmGone(std::string("QEMU exited during ") + waiting_for);
        fail("the agent channel closed during {}", waiting_for);
      }
    }
  }
}

proto::Frame AgentClient::request(Type type, std::string_view payload, Type expected, Deadline deadline, int vm_pidfd,
                                  const char* what, bool prefix_errors) {
  uint32_t stream = next_stream_++;
  conn_.send(type, stream, payload);
  for (;;) {
    proto::Frame f = wait_frame(deadline, vm_pidfd, what);
    if (f.stream != stream) continue;
    if (f.type == Type::kError) {
      std::string message = proto::decode_text(f.payload);
      if (!prefix_errors) throw Error(message);
      fail("{} failed in the VM: {}", what, message);
    }
    if (f.type == expected) return f;
    fail("protocol error: unexpected {} frame in answer to {}", proto::type_name(f.type), what);
  }
}

void AgentClient::setup(const proto::SetupRequest& r, Deadline deadline, int vm_pidfd) {
  request(Type::kSetup, r.encode(), Type::kOk, deadline, vm_pidfd, "setup");
}

void AgentClient::service(const proto::ServiceRequest& r, Deadline deadline, int vm_pidfd) {
  r.validate();
  std::string what = "starting service " + r.name;
  // The agent's messages name the service already ("service NAME was not ready ...").
  request(Type::kService, r.encode(), Type::kOk, deadline, vm_pidfd, what.c_str(), false);
}

void AgentClient::network(const proto::NetworkRequest& r, Deadline deadline, int vm_pidfd) {
  r.validate();
  request(Type::kNetwork, r.encode(), Type::kOk, deadline, vm_pidfd, "network setup");
}

void AgentClient::ping(Deadline deadline) {
  proto::Frame f = request(Type::kPing, "ping", Type::kPong, deadline, -1, "ping");
  if (f.payload != "ping") fail("protocol error: PONG does not echo PING");
}

ExecOutcome AgentClient::exec(const proto::Exec& req, const ExecIo& io) {
  // Encoded before the stream is taken: a command line over the protocol's
  // bounds fails here with nothing sent.
  std::vector<proto::OutFrame> frames = proto::encode_exec(req);
  const uint32_t stream = next_stream_++;
  // A long command line takes several frames (docs/protocol.md, "Large
  // EXEC"), all queued now so that nothing else comes between them.
  for (const auto& f : frames) conn_.send(f.type, stream, f.payload);
  if (frames.size() > 1) trace(fmt::format("EXEC sent in {} frames", frames.size()));

  ExecOutcome out;
  bool started = false;
  bool stdin_open = io.stdin_fd >= 0 && (req.flags & proto::kExecStdin);
  bool stdout_ok = true, stderr_ok = true;
  std::optional<Deadline> grace;  // set once we have asked the program to stop
  bool timed_out = false;
  int interrupted = 0;

  auto finish = [&](ExecOutcome::Kind kind) {
    out.kind = kind;
    if (kind == ExecOutcome::Kind::kExited && timed_out) out.kind = ExecOutcome::Kind::kTimedOut;
    if (kind == ExecOutcome::Kind::kExited && interrupted) out.kind = ExecOutcome::Kind::kInterrupted;
    out.signo = interrupted;
    return out;
  };
  auto write_output = [&](int fd, bool& ok, const std::string& data) {
    if (!ok) return;
    if (int err = try_write_all(fd, data)) {
      ok = false;
      // Our reader went away: the program would have died of SIGPIPE.
      if (err == EPIPE) conn_.send(Type::kSignal, stream, proto::encode_i32(SIGPIPE));
    }
  };

  for (;;) {
    while (auto f = conn_.next()) {
      if (f->stream != stream) continue;
      switch (f->type) {
        case Type::kStarted:
          started = true;
          trace("program started");
          break;
        case Type::kStdout:
          write_output(io.stdout_fd, stdout_ok, f->payload);
          break;
        case Type::kStderr:
          write_output(io.stderr_fd, stderr_ok, f->payload);
          break;
        case Type::kExit:
          out.status = proto::ExitStatus::decode(f->payload);
          out.has_status = true;
          return finish(ExecOutcome::Kind::kExited);
        case Type::kError:
          out.message = proto::decode_text(f->payload);
          return finish(started ? ExecOutcome::Kind::kAgentLost : ExecOutcome::Kind::kStartFailed);
        default:
          out.message = std::string("unexpected ") + proto::type_name(f->type) + " frame";
          return finish(ExecOutcome::Kind::kAgentLost);
      }
    }

    Deadline wake = grace ? Deadline::earliest(*grace, io.timeout) : io.timeout;
    if (grace && grace->expired()) {
      out.message = "the program did not finish after being told to stop";
      return finish(timed_out ? ExecOutcome::Kind::kTimedOut : ExecOutcome::Kind::kInterrupted);
    }
    if (!timed_out && io.timeout.expired()) {
      timed_out = true;
      conn_.send(Type::kSignal, stream, proto::encode_i32(SIGKILL));
      grace = Deadline::after(io.grace);
      continue;
    }

    struct pollfd p[4];
    int n = 0;
    p[n++] = {fd_.get(), static_cast<short>(POLLIN | (conn_.wants_write() ? POLLOUT : 0)), 0};
    int i_stdin = -1, i_sig = -1, i_vm = -1;
    // Forward stdin only while the channel keeps up (backpressure).
    if (stdin_open && started && conn_.queued() < (1u << 20)) i_stdin = n, p[n++] = {io.stdin_fd, POLLIN, 0};
    if (io.signal_fd >= 0) i_sig = n, p[n++] = {io.signal_fd, POLLIN, 0};
    if (io.vm_pidfd >= 0) i_vm = n, p[n++] = {io.vm_pidfd, POLLIN, 0};
    int r = ::poll(p, static_cast<nfds_t>(n), wake.poll_timeout_ms());
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_errno("poll");
    }

    if (p[0].revents & POLLOUT) {
      if (!conn_.flush()) {
        out.message = "the agent channel broke";
        return finish(ExecOutcome::Kind::kAgentLost);
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      if (conn_.on_readable() == proto::Connection::ReadResult::kEof) {
        if (vm_exiting(io.vm_pidfd)) return finish(ExecOutcome::Kind::kVmGone);
        out.message = "the agent channel closed";
        return finish(ExecOutcome::Kind::kAgentLost);
      }
      continue;  // handle frames before anything else
    }
    if (i_vm >= 0 && (p[i_vm].revents & POLLIN)) return finish(ExecOutcome::Kind::kVmGone);
    if (i_sig >= 0 && (p[i_sig].revents & POLLIN)) {
      struct signalfd_siginfo si;
      if (::read(io.signal_fd, &si, sizeof si) == sizeof si) {
        int sig = static_cast<int>(si.ssi_signo);
        if (sig == SIGWINCH) {
          struct winsize ws {};
          if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0)
            conn_.send(Type::kResize, stream, proto::WindowSize{ws.ws_row, ws.ws_col}.encode());
        } else if (interrupted) {
          // A second interrupt: stop waiting.
          out.message = "interrupted twice";
          return finish(ExecOutcome::Kind::kInterrupted);
        } else {
          interrupted = sig;
          conn_.send(Type::kSignal, stream, proto::encode_i32(sig));
          grace = Deadline::after(io.grace);
        }
      }
    }
    if (i_stdin >= 0 && (p[i_stdin].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[proto::kChunk];
      ssize_t got = read_some(io.stdin_fd, buf);
      if (got > 0) {
        conn_.send(Type::kStdin, stream, std::string_view(buf, static_cast<size_t>(got)));
      } else if (got == 0 || errno != EAGAIN) {
        conn_.send(Type::kStdin, stream, "");  // end of input
        stdin_open = false;
      }
    }
  }
}

}  // namespace kestrel::host

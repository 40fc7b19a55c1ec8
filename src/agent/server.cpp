#include "agent/server.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/console.hpp"
#include "agent/log.hpp"
#include "agent/ports.hpp"
#include "proto/frame.hpp"
#include "util/error.hpp"
#include "util/io.hpp"

namespace kestrel::agent {

namespace {

using namespace std::chrono_literals;

// How often disconnected ports are re-checked when no SIGIO came.
constexpr auto kPortCheckInterval = 200ms;
constexpr auto kPortScanInterval = 1000ms;
// Reads per connection per round, so one busy host cannot starve the others.
constexpr int kReadsPerRound = 16;

sigset_t server_signals(bool with_term) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGIO);
  if (with_term) {
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
  }
  return set;
}

}  // namespace

AgentServer::AgentServer(ServerOptions options) : options_(std::move(options)), root_(options_.root) {
  // A program that closes its stdin must not kill us with SIGPIPE; spawned
  // programs get the default back.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set = server_signals(options_.stop_on_term);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) fail_errno("sigprocmask");
  signal_fd_ = UniqueFd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signal_fd_) fail_errno("signalfd");
  if (options_.find_ports) next_port_scan_ = Deadline::after(kPortScanInterval);
}

AgentServer::~AgentServer() {
  for (auto& c : conns_) forget_programs(*c);
}

void AgentServer::add_port(UniqueFd fd, std::string name) {
  add_conn(Conn::Kind::kPort, std::move(fd), std::move(name));
}

void AgentServer::add_socket(UniqueFd fd, std::string name) {
  set_nonblocking(fd.get(), true);
  add_conn(Conn::Kind::kSocket, std::move(fd), std::move(name));
}

void AgentServer::add_listener(UniqueFd fd) {
  set_nonblocking(fd.get(), true);
  listeners_.push_back(std::move(fd));
}

void AgentServer::add_conn(Conn::Kind kind, UniqueFd fd, std::string name) {
  auto c = std::make_unique<Conn>();
  c->kind = kind;
  c->name = std::move(name);
  c->wire = proto::Connection(fd.get());
  c->fd = std::move(fd);
  Conn& ref = *c;
  conns_.push_back(std::move(c));
  if (kind == Conn::Kind::kSocket) {
    on_connect(ref);
  } else {
    // Whether a host is there already is found out by check_ports().
    set_async(ref.fd.get(), true);
    ports_changed_ = true;
  }
}

void AgentServer::run() {
  int failures = 0;
  while (!stopping_) {
    try {
      run_once(-1);
      failures = 0;
    } catch (const std::exception& e) {
      log_errorf("event loop: {}", e.what());
      // Something is broken for good (poll itself failing): let the caller
      // decide rather than spin.
      if (++failures >= 100) throw;
    }
  }
}

void AgentServer::run_once(int timeout_ms) {
  if (ports_changed_ || next_port_check_.expired()) check_ports();
  if (options_.find_ports && next_port_scan_.expired()) {
    size_t ports =
        std::count_if(conns_.begin(), conns_.end(), [](const auto& c) { return c->kind == Conn::Kind::kPort; });
    if (ports < static_cast<size_t>(proto::kPortCount)) {
      for (auto& p : options_.find_ports()) add_port(std::move(p.fd), p.name);
      next_port_scan_ = Deadline::after(kPortScanInterval);
    } else {
      next_port_scan_ = Deadline::never();
    }
    if (ports_changed_) check_ports();
  }
  if (options_.console) options_.console->tick();

  build_poll_set();
  int n = ::poll(pollfds_.data(), pollfds_.size(), poll_timeout(timeout_ms));
  if (n < 0) {
    if (errno == EINTR) return;
    fail_errno("poll");
  }
  for (size_t i = 0; i < pollfds_.size() && n > 0; ++i) {
    if (!pollfds_[i].revents) continue;
    --n;
    try {
      dispatch(watches_[i], pollfds_[i].revents);
    } catch (const std::exception& e) {
      log_error(e.what());
    }
  }
  sweep();
}

void AgentServer::build_poll_set() {
  pollfds_.clear();
  watches_.clear();
  auto add = [&](int fd, short events, Watch w) {
    pollfds_.push_back({fd, events, 0});
    w.fd = fd;
    watches_.push_back(w);
  };
  add(signal_fd_.get(), POLLIN, {Slot::kSignal});
  if (options_.console) {
    if (int fd = options_.console->input_fd(); fd >= 0) add(fd, POLLIN, {Slot::kConsole});
  }
  for (const auto& l : listeners_) add(l.get(), POLLIN, {Slot::kListener});
  for (const auto& c : conns_) {
    // A port without a host polls POLLHUP all the time: it is left out and
    // re-checked on SIGIO (and every kPortCheckInterval).
    if (!c->connected || c->closed) continue;
    short events = 0;
    if (c->stdin_backlog <= options_.max_stdin_backlog) events |= POLLIN;
    if (c->wire.wants_write()) events |= POLLOUT;
    add(c->fd.get(), events, {Slot::kConn, c.get()});
    bool room = c->wire.queued() < options_.max_queued_output;
    for (const auto& [id, s] : c->streams) {
      const Program& p = s->program;
      if (room && p.output) add(p.output.get(), POLLIN, {Slot::kOutput, c.get(), id});
      if (room && p.errors) add(p.errors.get(), POLLIN, {Slot::kErrors, c.get(), id});
      if (p.input && s->stdin_offset < s->stdin_pending.size())
        add(p.input.get(), POLLOUT, {Slot::kInput, c.get(), id});
    }
  }
}

int AgentServer::poll_timeout(int limit_ms) const {
  Deadline d = Deadline::earliest(next_port_check_, next_port_scan_);
  if (options_.console)
    d = Deadline::earliest(d, Deadline::earliest(options_.console->deadline(), options_.console->quiet_deadline()));
  int t = d.poll_timeout_ms();
  if (limit_ms < 0) return t;
  return t < 0 ? limit_ms : std::min(t, limit_ms);
}

void AgentServer::dispatch(const Watch& w, short revents) {
  switch (w.slot) {
    case Slot::kSignal:
      on_signals();
      return;
    case Slot::kListener:
      accept_on(w.fd);
      return;
    case Slot::kConn:
      if (w.conn->connected && !w.conn->closed) on_conn_event(*w.conn, revents);
      return;
    case Slot::kOutput:
    case Slot::kErrors:
      if (Stream* s = find_stream(*w.conn, w.stream, w.fd)) {
        UniqueFd& fd = w.slot == Slot::kOutput ? s->program.output : s->program.errors;
        pump_output(*w.conn, *s, fd, w.slot == Slot::kOutput ? proto::Type::kStdout : proto::Type::kStderr);
      }
      return;
    case Slot::kInput:
      if (Stream* s = find_stream(*w.conn, w.stream, w.fd)) pump_input(*w.conn, *s);
      return;
    case Slot::kConsole:
      options_.console->on_input();
      return;
  }
}

void AgentServer::on_signals() {
  bool child = false;
  signalfd_siginfo info;
  while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    switch (info.ssi_signo) {
      case SIGCHLD:
        child = true;
        break;
      case SIGIO:
        ports_changed_ = true;
        break;
      case SIGTERM:
      case SIGINT:
        stopping_ = true;
        break;
      default:
        break;
    }
  }
  if (child) reap_children();
}

void AgentServer::reap_children() {
  int status = 0;
  if (options_.reap_all) {
    pid_t pid;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) on_program_exit(pid, status);
    return;
  }
  std::vector<pid_t> ours;
  for (const auto& [pid, where] : pids_) ours.push_back(pid);
  if (options_.console && options_.console->pid() > 0) ours.push_back(options_.console->pid());
  for (pid_t pid : ours) {
    if (::waitpid(pid, &status, WNOHANG) == pid) on_program_exit(pid, status);
  }
}

void AgentServer::check_ports() {
  ports_changed_ = false;
  std::vector<pollfd> fds;
  std::vector<Conn*> which;
  for (const auto& c : conns_) {
    if (c->kind != Conn::Kind::kPort || c->connected) continue;
    fds.push_back({c->fd.get(), POLLIN, 0});
    which.push_back(c.get());
  }
  if (!fds.empty() && ::poll(fds.data(), fds.size(), 0) > 0) {
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & POLLHUP)) on_connect(*which[i]);
    }
  }
  bool waiting = std::any_of(conns_.begin(), conns_.end(),
                             [](const auto& c) { return c->kind == Conn::Kind::kPort && !c->connected; });
  next_port_check_ = waiting ? Deadline::after(kPortCheckInterval) : Deadline::never();
}

void AgentServer::on_connect(Conn& c) {
  c.connected = true;
  c.requests_seen = false;
  c.execs.reset();
  c.wire.reset();
  // Connected ports report the host leaving as POLLHUP in the main poll;
  // SIGIO would only add a signal per buffer of input.
  if (c.kind == Conn::Kind::kPort) set_async(c.fd.get(), false);
  debugf("{}: host connected", c.name);
  // Unsolicited greeting, so a host that connected early learns of us at once.
  c.wire.send(proto::Type::kHello, 0, greeting(0).encode());
}

void AgentServer::on_disconnect(Conn& c) {
  debugf("{}: host disconnected", c.name);
  forget_programs(c);
  c.execs.reset();
  c.wire.reset();
  c.requests_seen = false;
  c.connected = false;
  if (c.kind == Conn::Kind::kSocket) {
    c.closed = true;
    return;
  }
  // Whatever the old host sent and we did not read must not reach the next
  // host's session: read it away (a port without a host reads EOF after it).
  char buf[4096];
  for (int i = 0; i < 4096 && read_some(c.fd.get(), buf) > 0; ++i) {
  }
  set_async(c.fd.get(), true);
  ports_changed_ = true;  // a new host may have connected already
}

void AgentServer::on_conn_event(Conn& c, short revents) {
  if (c.kind == Conn::Kind::kPort && (revents & POLLHUP)) {
    on_disconnect(c);
    return;
  }
  if ((revents & POLLOUT) && !c.wire.flush()) {
    on_disconnect(c);
    return;
  }
  if (revents & (POLLIN | POLLHUP | POLLERR)) read_frames(c);
}

void AgentServer::read_frames(Conn& c) {
  for (int i = 0; i < kReadsPerRound && c.connected; ++i) {
    if (c.stdin_backlog > options_.max_stdin_backlog) return;
    proto::Connection::ReadResult r;
    try {
      r = c.wire.on_readable();
    } catch (const std::exception& e) {
      log_errorf("{}: {}", c.name, e.what());
      on_disconnect(c);
      return;
    }
    if (r == proto::Connection::ReadResult::kWouldBlock) return;
    if (r == proto::Connection::ReadResult::kEof) {
      on_disconnect(c);
      return;
    }
    try {
      while (c.connected) {
        std::optional<proto::Frame> f = c.wire.next();
        if (!f) break;
        handle_frame(c, *f);
      }
    } catch (const std::exception& e) {
      protocol_error(c, e.what());
      return;
    }
  }
}

void AgentServer::accept_on(int listener) {
  int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EAGAIN && errno != EINTR) log_errorf("accept: {}", std::strerror(errno));
    return;
  }
  add_conn(Conn::Kind::kSocket, UniqueFd(fd), fmt::format("socket {}", fd));
}

void AgentServer::sweep() {
  std::erase_if(conns_, [](const auto& c) { return c->closed; });
}

}  // namespace kestrel::agent

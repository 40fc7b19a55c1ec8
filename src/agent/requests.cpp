// The host's requests (docs/protocol.md, "Messages"): one handler per frame
// type. A malformed request payload fails that request (ERROR on its
// stream); a frame that breaks the protocol itself throws, and read_frames()
// turns that into a protocol error for the whole connection.
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "agent/console.hpp"
#include "agent/log.hpp"
#include "agent/oom.hpp"
#include "agent/server.hpp"
#include "agent/services.hpp"
#include "agent/setup.hpp"
#include "proto/messages.hpp"
#include "util/error.hpp"

namespace kestrel::agent {

using proto::Type;

namespace {

[[noreturn]] void violation(const std::string& message) { throw Error("protocol error: " + message); }

}  // namespace

std::string AgentServer::hello_info() const {
  utsname u{};
  ::uname(&u);
  char host[HOST_NAME_MAX + 1] = {};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("kernel={}\nhostname={}\nsetup={}\nroot={}\n", u.release, host, setup_done_ ? 1 : 0,
                     root_mounted_ ? 1 : 0);
}

proto::Hello AgentServer::greeting(uint32_t nonce) const {
  return {proto::kVersion, nonce, {"exec", "pty", "setup", "services", "disk-root", "network"}, hello_info()};
}

void AgentServer::protocol_error(Conn& c, const std::string& message) {
  log_errorf("{}: {}", c.name, message);
  // Discard the connection's state (its programs included), then report.
  forget_programs(c);
  c.execs.reset();
  c.wire.reset();
  c.requests_seen = false;
  c.wire.send(Type::kError, 0, proto::encode_text(message));
}

void AgentServer::handle_frame(Conn& c, proto::Frame& f) {
  if (f.type != Type::kHello) c.requests_seen = true;
  if (f.type == Type::kExec && c.streams.count(f.stream))
    violation(fmt::format("EXEC on stream {}, which is in use", f.stream));
  // EXEC and EXEC_MORE frames go through the assembler, which also refuses
  // anything else while an EXEC awaits its last frame.
  switch (c.execs.offer(f)) {
    case proto::ExecAssembler::Offer::kNotMine:
      break;
    case proto::ExecAssembler::Offer::kPending:
      return;
    case proto::ExecAssembler::Offer::kReady:
      on_exec(c, c.execs.take());
      return;
  }
  switch (f.type) {
    case Type::kHello:
      on_hello(c, f);
      return;
    case Type::kSetup:
      on_setup(c, f);
      return;
    case Type::kService:
      on_service(c, f);
      return;
    case Type::kNetwork:
      on_network(c, f);
      return;
    case Type::kStdin:
      on_stdin(c, f);
      return;
    case Type::kSignal:
      on_signal(c, f);
      return;
    case Type::kResize:
      on_resize(c, f);
      return;
    case Type::kPing:
      c.wire.send(Type::kPong, f.stream, f.payload);
      return;
    case Type::kExec:
    case Type::kExecMore:
    case Type::kOk:
    case Type::kError:
    case Type::kStarted:
    case Type::kStdout:
    case Type::kStderr:
    case Type::kExit:
    case Type::kPong:
      break;
  }
  violation(fmt::format("unexpected {} frame from the host", proto::type_name(f.type)));
}

void AgentServer::on_hello(Conn& c, const proto::Frame& f) {
  if (f.stream != 0) violation(fmt::format("HELLO on stream {}", f.stream));
  proto::Hello hello;
  try {
    hello = proto::Hello::decode(f.payload);
  } catch (const Error& e) {
    violation(e.what());
  }
  // A host repeats HELLO only until its greeting, before any request. A HELLO
  // after requests is a new host whose arrival we missed (it connected
  // before we saw the old one leave): start its session afresh.
  if (c.requests_seen) {
    debugf("{}: HELLO after requests: a new host session", c.name);
    forget_programs(c);
    c.execs.reset();
    c.requests_seen = false;
  }
  c.wire.send(Type::kHello, 0, greeting(hello.nonce).encode());
  debugf("{}: greeted", c.name);
}

void AgentServer::on_setup(Conn& c, const proto::Frame& f) {
  debugf("{}: SETUP", c.name);
  if (f.stream == 0) violation("SETUP on stream 0");
  auto refuse = [&](const std::string& message) {
    log_error(message);
    c.wire.send(Type::kError, f.stream, proto::encode_text(message));
  };
  proto::SetupRequest request;
  try {
    request = proto::SetupRequest::decode(f.payload);
  } catch (const Error& e) {
    return refuse(fmt::format("cannot set up the VM: {}", e.what()));
  }
  if (!options_.setup) return refuse("cannot set up the VM: SETUP is not supported by this agent");
  // docs/protocol.md, "Setup": again and again, but a root once, and nothing
  // after a SETUP that failed midway (which may have left mounts behind).
  if (setup_failed_) return refuse("cannot set up the VM: an earlier SETUP failed and left the VM in an unknown state");
  bool wants_root =
      std::any_of(request.mounts.begin(), request.mounts.end(), [](const auto& m) { return m.is_root(); });
  if (wants_root && root_mounted_)
    return refuse("cannot set up the VM: a root is mounted already (a root is mounted once per boot)");
  const std::string old_root = root_;
  try {
    std::string root = options_.setup(request, root_);
    if (!root.empty()) root_ = root;
  } catch (const InvalidSetup& e) {
    return refuse(fmt::format("cannot set up the VM: {}", e.what()));
  } catch (const std::exception& e) {
    setup_failed_ = true;
    if (options_.console) options_.console->start(root_);
    return refuse(fmt::format("cannot set up the VM: {}", e.what()));
  }
  setup_done_ = true;
  root_mounted_ = root_mounted_ || wants_root;
  // A new hostname or root: the console shell starts over with both.
  if (options_.console && (root_ != old_root || !request.hostname.empty())) options_.console->start(root_);
  c.wire.send(Type::kOk, f.stream, "");
}

void AgentServer::on_service(Conn& c, const proto::Frame& f) {
  if (f.stream == 0) violation("SERVICE on stream 0");
  std::string name;
  try {
    proto::ServiceRequest request = proto::ServiceRequest::decode(f.payload);
    name = request.name;
    debugf("{}: SERVICE {} ({}), up to {} ms", c.name, request.name, request.ready, request.timeout_ms);
    // Blocks the loop until the service is ready: only the host setting the
    // VM up is connected meanwhile.
    run_service(request, root_, options_.service_logs);
  } catch (const std::exception& e) {
    std::string message = name.empty() ? fmt::format("cannot start a service: {}", e.what()) : e.what();
    log_error(message);
    c.wire.send(Type::kError, f.stream, proto::encode_text(message));
    return;
  }
  c.wire.send(Type::kOk, f.stream, "");
}

void AgentServer::on_network(Conn& c, const proto::Frame& f) {
  if (f.stream == 0) violation("NETWORK on stream 0");
  debugf("{}: NETWORK", c.name);
  try {
    proto::NetworkRequest request;
    try {
      request = proto::NetworkRequest::decode(f.payload);
    } catch (const Error& e) {
      fail("cannot configure the network: {}", e.what());
    }
    if (!options_.network) fail("cannot configure the network: NETWORK is not supported by this agent");
    // Blocks the loop while the NICs appear (up to 5 s, once per boot).
    options_.network(request, root_);
  } catch (const std::exception& e) {
    log_error(e.what());
    c.wire.send(Type::kError, f.stream, proto::encode_text(e.what()));
    return;
  }
  c.wire.send(Type::kOk, f.stream, "");
}

void AgentServer::on_exec(Conn& c, proto::ExecAssembler::Request request) {
  const uint32_t stream = request.stream;
  Program program;
  try {
    if (!request.error.empty()) throw Error(request.error);
    const proto::Exec& exec = request.exec;
    debugf("{}: stream {}: starting {} ({} arguments, {} environment entries)", c.name, stream, exec.argv[0],
           exec.argv.size(), exec.env.size());
    program = start_program(exec, root_);
    debugf("{}: stream {}: started", c.name, stream);
  } catch (const std::exception& e) {
    debugf("{}: stream {}: {}", c.name, stream, e.what());
    c.wire.send(Type::kError, stream, proto::encode_text(e.what()));
    return;
  }
  pid_t pid = program.pid;
  // The number is ours again: any old process group by that number is gone.
  for (auto& other : conns_) std::erase(other->lingering, pid);
  auto s = std::make_unique<Stream>();
  s->id = stream;
  s->program = std::move(program);
  s->oom = oom_mark_time();
  c.streams[stream] = std::move(s);
  pids_[pid] = {&c, stream};
  c.wire.send(Type::kStarted, stream, proto::encode_i32(pid));
}

void AgentServer::on_stdin(Conn& c, proto::Frame& f) {
  Stream* s = find_stream(c, f.stream);
  // Input for a finished stream, after end of input, or for a program
  // without forwarded stdin is ignored.
  if (!s || !s->program.input || s->stdin_eof) return;
  if (f.payload.empty()) {
    s->stdin_eof = true;
    if (s->program.pty) {
      // VEOF (^D) ends the input at the start of a line; elsewhere it first
      // ends the pending line, so it takes two.
      std::string eof = s->input_at_line_start ? "\x04" : "\x04\x04";
      s->stdin_pending += eof;
      c.stdin_backlog += eof.size();
    }
  } else {
    s->input_at_line_start = f.payload.back() == '\n';
    c.stdin_backlog += f.payload.size();
    if (s->stdin_offset == s->stdin_pending.size()) {
      s->stdin_pending = std::move(f.payload);
      s->stdin_offset = 0;
    } else {
      s->stdin_pending += f.payload;
    }
  }
  pump_input(c, *s);
}

void AgentServer::on_signal(Conn& c, const proto::Frame& f) {
  int32_t signo;
  try {
    signo = proto::decode_i32(f.payload);
  } catch (const Error& e) {
    violation(e.what());
  }
  Stream* s = find_stream(c, f.stream);
  if (!s) return;  // the program finished meanwhile
  if (::kill(-s->program.pid, signo) != 0 && errno != ESRCH)
    log_errorf("{}: stream {}: cannot send signal {}: {}", c.name, f.stream, signo, std::strerror(errno));
}

void AgentServer::on_resize(Conn& c, const proto::Frame& f) {
  proto::WindowSize size;
  try {
    size = proto::WindowSize::decode(f.payload);
  } catch (const Error& e) {
    violation(e.what());
  }
  Stream* s = find_stream(c, f.stream);
  if (!s || !s->program.pty || !s->program.output) return;
  set_window_size(s->program.output.get(), size.rows, size.cols);
}

}  // namespace kestrel::agent

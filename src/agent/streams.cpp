// Program I/O for exec streams: output into frames (with backpressure from
// the connection's queue), forwarded stdin, and the end of a stream.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/console.hpp"
#include "agent/log.hpp"
#include "agent/oom.hpp"
#include "agent/server.hpp"
#include "util/io.hpp"

namespace kestrel::agent {

namespace {

// Reads of a program's output after it exited, per descriptor. Output
// written before the exit is at most a pipe's (or a terminal's) buffer; the
// bound only stops a background child that keeps writing from delaying EXIT
// for ever.
constexpr int kDrainReads = 64;

}  // namespace

AgentServer::Stream* AgentServer::find_stream(Conn& c, uint32_t id, int fd) {
  auto it = c.streams.find(id);
  if (it == c.streams.end()) return nullptr;
  Stream* s = it->second.get();
  if (fd >= 0 && s->program.output.get() != fd && s->program.errors.get() != fd && s->program.input.get() != fd)
    return nullptr;  // a descriptor of a stream that ended meanwhile
  return s;
}

AgentServer::Pump AgentServer::pump_output(Conn& c, Stream& s, UniqueFd& fd, proto::Type type) {
  static char buffer[proto::kChunk];
  ssize_t n = read_some(fd.get(), buffer);
  if (n > 0) {
    c.wire.send_data(type, s.id, std::string_view(buffer, static_cast<size_t>(n)));
    return Pump::kData;
  }
  if (n < 0 && errno == EAGAIN) return Pump::kWouldBlock;
  // EOF; or EIO from a pty master: every holder of the slave closed it.
  if (n < 0 && errno != EIO)
    log_errorf("{}: stream {}: cannot read program output: {}", c.name, s.id, std::strerror(errno));
  fd.reset();
  return Pump::kEnd;
}

void AgentServer::pump_input(Conn& c, Stream& s) {
  while (s.program.input && s.stdin_offset < s.stdin_pending.size()) {
    size_t left = s.stdin_pending.size() - s.stdin_offset;
    ssize_t n = ::write(s.program.input.get(), s.stdin_pending.data() + s.stdin_offset, std::min(left, proto::kChunk));
    if (n > 0) {
      s.stdin_offset += static_cast<size_t>(n);
      c.stdin_backlog -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    // EPIPE: the program closed its stdin. Later input is dropped.
    close_input(c, s);
    return;
  }
  if (s.stdin_offset == s.stdin_pending.size()) {
    s.stdin_pending.clear();
    s.stdin_offset = 0;
    if (s.stdin_eof) close_input(c, s);
  }
}

void AgentServer::close_input(Conn& c, Stream& s) {
  c.stdin_backlog -= s.stdin_pending.size() - s.stdin_offset;
  s.stdin_pending.clear();
  s.stdin_offset = 0;
  s.stdin_eof = true;
  // For a pty this closes our duplicate only; the master stays for output.
  s.program.input.reset();
}

void AgentServer::on_program_exit(pid_t pid, int status) {
  if (options_.console && options_.console->on_exit(pid)) return;
  auto it = pids_.find(pid);
  if (it == pids_.end()) return;  // an orphan we inherited, or a program of a lost host
  auto [conn, id] = it->second;
  debugf("{}: stream {}: exited", conn->name, id);
  pids_.erase(it);
  finish_stream(*conn, id, status);
}

void AgentServer::finish_stream(Conn& c, uint32_t id, int status) {
  auto it = c.streams.find(id);
  if (it == c.streams.end()) return;
  Stream& s = *it->second;
  // Everything the program wrote before it exited is in its pipes (or the
  // terminal) now; what is there at this moment is sent before EXIT. A pipe
  // still held by a background child does not delay EXIT.
  for (auto [fd, type] :
       {std::pair{&s.program.output, proto::Type::kStdout}, std::pair{&s.program.errors, proto::Type::kStderr}}) {
    for (int i = 0; i < kDrainReads && *fd; ++i) {
      if (pump_output(c, s, *fd, type) != Pump::kData) break;
    }
  }
  if (options_.before_exit) options_.before_exit();
  proto::ExitStatus exit;
  if (WIFSIGNALED(status)) {
    exit.kind = proto::ExitStatus::Kind::kSignaled;
    exit.code = WTERMSIG(status);
  } else {
    exit.code = WEXITSTATUS(status);
  }
  // A program that succeeded needs no word on the OOM killer (and its run
  // no read of /proc/vmstat).
  if (exit.kind == proto::ExitStatus::Kind::kSignaled || exit.code != 0) exit.oom = oom_kills_since(s.oom);
  c.wire.send(proto::Type::kExit, id, exit.encode());
  debugf("{}: stream {} finished (status {})", c.name, id, exit.shell_status());
  pid_t group = s.program.pid;
  if (::kill(-group, 0) == 0) c.lingering.push_back(group);
  c.stdin_backlog -= s.stdin_pending.size() - s.stdin_offset;
  c.streams.erase(it);
}

void AgentServer::forget_programs(Conn& c) {
  for (auto& [id, s] : c.streams) {
    pid_t pid = s->program.pid;
    ::kill(-pid, SIGKILL);
    pids_.erase(pid);  // reaped later as a stranger
  }
  for (pid_t group : c.lingering) ::kill(-group, SIGKILL);
  c.streams.clear();
  c.lingering.clear();
  c.stdin_backlog = 0;
}

}  // namespace kestrel::agent

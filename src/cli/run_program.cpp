// The program of `kestrel run`: found and checked on the host, run in a
// booted VM, a copy kept with a kept VM.
#include "cli/run_program.hpp"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "cli/commands.hpp"
#include "host/vm_exit.hpp"
#include "proto/frame.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"
#include "util/trace.hpp"

namespace kestrel::cli {

using namespace std::chrono_literals;

std::optional<fs::path> keep_program_copy(const fs::path& dir, const fs::path& program) {
  fs::path copy = dir / "program" / program.filename();
  try {
    make_dirs(copy.parent_path(), 0700);
    std::error_code ec;
    fs::copy_file(program, copy, fs::copy_options::overwrite_existing, ec);
    if (ec) fail("cannot copy {} to {}: {}", program.string(), copy.string(), ec.message());
    return copy;
  } catch (const Error& e) {
    say(std::string("warning: ") + e.what());
    return std::nullopt;
  }
}

void say_interrupted(int signo, const std::string& name) {
  const char* abbrev = sigabbrev_np(signo);
  say(fmt::format("interrupted by {}: stopping the program and tearing VM {} down",
                  abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signo), name));
}

ProgramResult run_program(const RunOptions& o, const std::string& name, const fs::path& program, host::Machine& machine,
                          const vm::VmPaths& paths, SignalFd& signals, const std::vector<std::string>& env,
                          const std::string& cwd) {
  proto::Exec exec;
  exec.argv = o.command;
  exec.argv[0] = program.string();
  exec.env = env;
  exec.cwd = cwd;
  host::ExecIo io;
  if (!::isatty(STDIN_FILENO)) {
    exec.flags |= proto::kExecStdin;
    io.stdin_fd = STDIN_FILENO;
  }
  io.signal_fd = signals.fd();
  io.vm_pidfd = machine.qemu().pidfd();
  if (o.timeout_s > 0) io.timeout = Deadline::after_seconds(o.timeout_s);
  host::ExecOutcome outcome = machine.agent().exec(exec, io);
  trace("program finished");

  using Kind = host::ExecOutcome::Kind;
  using How = ProgramResult::How;
  switch (outcome.kind) {
    case Kind::kExited:
      if (!outcome.status.oom.empty()) say(host::describe_oom(outcome.status.oom, o.vm.mem_mib));
      return {How::kFinished, outcome.status.shell_status()};
    case Kind::kStartFailed:
      say("error: " + outcome.message);
      return {How::kFinished,
              outcome.message.find("No such file") != std::string::npos ? kExitNotFound : kExitCannotExec};
    case Kind::kTimedOut:
      say(fmt::format("error: {} ran past --timeout {} s and was killed", o.command[0], o.timeout_s));
      return {How::kFinished, kExitTimeout};
    case Kind::kInterrupted:
      // Interrupted runs never keep their VM: the user asked us to stop.
      say_interrupted(outcome.signo, name);
      return {How::kInterrupted, 128 + outcome.signo};
    case Kind::kVmGone: {
      auto exit = host::explain_vm_exit(paths, machine.qemu().wait(Deadline::after(1s)));
      say("error: " + host::describe_vm_failure(name, paths, "stopped while the program ran: " + exit));
      return {How::kVmGone, kExitKestrel};
    }
    case Kind::kAgentLost:
      say("error: " + host::describe_vm_failure(name, paths, "lost its agent: " + outcome.message));
      return {How::kAgentLost, kExitKestrel};
  }
  return {How::kFinished, kExitKestrel};
}

}  // namespace kestrel::cli

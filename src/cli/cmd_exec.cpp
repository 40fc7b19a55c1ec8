// kestrel exec NAME 'CMD' -f DIR   |   kestrel exec NAME -f DIR -- ARGV...
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>

#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "cli/terminal.hpp"
#include "cli/vm_target.hpp"
#include "config/keys.hpp"
#include "host/agent_client.hpp"
#include "host/environment.hpp"
#include "host/machine.hpp"
#include "host/vm_exit.hpp"
#include "util/error.hpp"
#include "util/process.hpp"
#include "util/signals.hpp"
#include "util/trace.hpp"

namespace kestrel::cli {

namespace {

const char* kExecHelp = R"(Run a command in a running VM and return its exit status.

  kestrel exec NAME 'CMD' -f DIR        CMD is run by /bin/sh -c
  kestrel exec NAME -f DIR -- ARGV...   ARGV is run as is

Output is streamed live (stdout and stderr apart); standard input is forwarded
unless it is a terminal (with -t it always is, on a pseudo-terminal). The
command runs as root in the VM's root file system, in /, with a clean
environment (PATH, HOME=/root, TERM). Several execs can run at once.

Up to 8 execs (and the run's own connection) can use one VM at once; more
wait for a free agent port.

SIGINT, SIGTERM and SIGHUP are forwarded to the command (its process group);
kestrel then returns the command's status, or 128+N if it has not finished 2 s
later. --timeout S (seconds, more than 0 and at most 1000000000; fractions
allowed) kills the command after S seconds: kestrel prints
"kestrel: error: the command ran past --timeout S s and was killed" and
exits 124.

Exit status: the command's, or 128+N if it died of signal N; 124 after
--timeout; 125 if kestrel failed or the VM died (the message says why and
names the console log); 126/127 if the command could not be executed / found.
)";

// The same numbers as run's `timeout` key (config/keys.cpp), but 0 is not
// "no limit" here: exec has no limit unless --timeout is given.
std::string check_timeout(const std::string& text) {
  auto seconds = config::parse_decimal(text);
  if (seconds && *seconds > 0 && *seconds <= static_cast<double>(config::kMaxSeconds)) return "";
  return fmt::format("'{}' is not a number of seconds greater than 0 and at most {}", text, config::kMaxSeconds);
}

}  // namespace

int cmd_exec(const Args& all_args) {
  // Everything after "--" is the command's argv, untouched by option parsing.
  auto dashdash = std::find(all_args.begin(), all_args.end(), "--");
  Args args(all_args.begin(), dashdash);
  std::vector<std::string> argv;
  if (dashdash != all_args.end()) argv.assign(dashdash + 1, all_args.end());

  std::vector<std::string> words;
  std::string dir;
  std::string timeout_text;  // kept as given, for the message
  bool tty = false;
  CLI::App app(kExecHelp, "kestrel exec");
  app.add_option("words", words, "NAME ['CMD']")->required()->expected(1, 2);
  app.add_option("-f,--dir", dir, "the deployment directory")->required();
  app.add_option(
         "--timeout", timeout_text,
         fmt::format("kill the command after SECONDS (exit status 124): more than 0, at most {}", config::kMaxSeconds))
      ->type_name("SECONDS")
      ->check(check_timeout);
  app.add_flag("-t,--tty", tty, "run on a pseudo-terminal (interactive programs, e.g. a shell)");
  if (!parse(app, args)) return 0;
  const std::string& name = words[0];
  if (words.size() == 2 && !argv.empty()) fail("give either 'CMD' or -- ARGV..., not both");
  if (words.size() == 2) argv = {"/bin/sh", "-c", words[1]};
  if (argv.empty()) fail("nothing to run: give 'CMD' or -- ARGV...");

  VmTarget target = find_vm(name, dir);
  trace("VM found");
  SignalFd signals({SIGINT, SIGTERM, SIGHUP, SIGWINCH});
  host::AgentClient agent = host::AgentClient::connect(target.paths, 1, Deadline::after(std::chrono::seconds(30)));
  trace("agent greeted");

  proto::Exec exec;
  exec.argv = argv;
  exec.env = host::default_exec_environment();
  exec.cwd = "/";
  host::ExecIo io;
  io.signal_fd = signals.fd();
  UniqueFd vm_pidfd = open_pidfd(target.pid);  // to tell a dead VM from a lost agent
  io.vm_pidfd = vm_pidfd.get();
  std::optional<RawTerminal> raw;
  if (tty) {
    exec.flags |= proto::kExecPty | proto::kExecStdin;
    io.stdin_fd = STDIN_FILENO;
    struct winsize ws {};
    if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
      exec.rows = ws.ws_row;
      exec.cols = ws.ws_col;
    } else {
      exec.rows = 24;
      exec.cols = 80;
    }
    if (::isatty(STDIN_FILENO)) raw.emplace(STDIN_FILENO);
  } else if (!::isatty(STDIN_FILENO)) {
    exec.flags |= proto::kExecStdin;
    io.stdin_fd = STDIN_FILENO;
  }
  if (!timeout_text.empty()) io.timeout = Deadline::after_seconds(*config::parse_decimal(timeout_text));
  host::ExecOutcome outcome = agent.exec(exec, io);
  trace("command finished");
  raw.reset();

  using Kind = host::ExecOutcome::Kind;
  switch (outcome.kind) {
    case Kind::kExited:
      return outcome.status.shell_status();
    case Kind::kStartFailed:
      say("error: " + outcome.message);
      return outcome.message.find("No such file") != std::string::npos ? kExitNotFound : kExitCannotExec;
    case Kind::kTimedOut:
      say(fmt::format("error: the command ran past --timeout {} s and was killed", timeout_text));
      return kExitTimeout;
    case Kind::kInterrupted:
      return outcome.has_status ? outcome.status.shell_status() : 128 + outcome.signo;
    case Kind::kVmGone:
      fail("{}", host::describe_vm_failure(
                     name, target.paths,
                     "stopped while the command ran: " + host::explain_vm_exit(target.paths, std::nullopt)));
    case Kind::kAgentLost:
      fail("{}", host::describe_vm_failure(name, target.paths, "lost its agent: " + outcome.message));
  }
  return kExitKestrel;
}

}  // namespace kestrel::cli

// kestrel exec NAME 'CMD' -f DIR   |   kestrel exec NAME -f DIR -- ARGV...
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

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
command runs as root in the VM's root file system, as the run's program did:
in the run's working directory, with the run's environment (KESTREL_VM
included; with -t, TERM is this terminal's), so that a failure can be
reproduced exactly. --cwd DIR runs it elsewhere, --env K=V sets a variable
(repeatable), --clean-env starts from a clean root environment (PATH,
HOME=/root, USER, LOGNAME, SHELL, TERM, LANG) instead. VMs of an older kestrel,
which did not record them, get / and the clean environment.

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
names the console log); 126/127 if the command could not be executed / found
(126 also when its working directory does not exist in the VM).
)";

// The same numbers as run's `timeout` key (config/keys.cpp), but 0 is not
// "no limit" here: exec has no limit unless --timeout is given.
std::string check_timeout(const std::string& text) {
  auto seconds = config::parse_decimal(text);
  if (seconds && *seconds > 0 && *seconds <= static_cast<double>(config::kMaxSeconds)) return "";
  return fmt::format("'{}' is not a number of seconds greater than 0 and at most {}", text, config::kMaxSeconds);
}

// Sets "K=V" in env, replacing an entry for K.
void set_variable(std::vector<std::string>& env, const std::string& kv) {
  std::string prefix = kv.substr(0, kv.find('=') + 1);
  std::erase_if(env, [&](const std::string& e) { return e.starts_with(prefix); });
  env.push_back(kv);
}

// The terminal a -t command runs on is ours, whatever the run's TERM was.
std::string host_term() {
  const char* term = std::getenv("TERM");
  return term && *term ? term : "linux";
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
  std::string cwd;
  std::vector<std::string> env_overrides;
  bool clean_env = false;
  CLI::App app(kExecHelp, "kestrel exec");
  app.add_option("words", words, "NAME ['CMD']")->required()->expected(1, 2);
  app.add_option("-f,--dir", dir, "the deployment directory")->required();
  app.add_option(
         "--timeout", timeout_text,
         fmt::format("kill the command after SECONDS (exit status 124): more than 0, at most {}", config::kMaxSeconds))
      ->type_name("SECONDS")
      ->check(check_timeout);
  app.add_flag("-t,--tty", tty, "run on a pseudo-terminal (interactive programs, e.g. a shell)");
  app.add_option("--cwd", cwd, "run in DIR (default: the run's working directory)");
  // One K=V per --env, so that the CMD after it stays a positional.
  app.add_option("--env", env_overrides, "set the variable K to V (repeatable)")
      ->allow_extra_args(false)
      ->each([](const std::string& kv) {
        if (kv.find('=') == std::string::npos || kv.front() == '=')
          throw CLI::ValidationError("--env", "'" + kv + "' is not of the form K=V");
      });
  app.add_flag("--clean-env", clean_env, "a clean root environment instead of the run's");
  if (!parse(app, args)) return 0;
  const std::string& name = words[0];
  // Usage errors (exit status 2), found before anything is opened.
  if (words.size() == 2 && !argv.empty()) throw CLI::ValidationError("give either 'CMD' or -- ARGV..., not both");
  if (words.size() == 2) argv = {"/bin/sh", "-c", words[1]};
  if (argv.empty()) throw CLI::ValidationError("a command is required: give 'CMD' or -- ARGV...");

  VmTarget target = find_vm(name, dir);
  trace("VM found");
  SignalFd signals({SIGINT, SIGTERM, SIGHUP, SIGWINCH});
  host::AgentClient agent = host::AgentClient::connect(target.paths, 1, Deadline::after(std::chrono::seconds(30)));
  trace("agent greeted");

  proto::Exec exec;
  exec.argv = argv;
  const deploy::State& state = target.deployment.state();
  exec.env = state.env && !clean_env ? *state.env : host::default_exec_environment();
  // A topology's nodes share one deployment: each is its own KESTREL_VM.
  if (state.kind == "topology" && !clean_env) set_variable(exec.env, "KESTREL_VM=" + name);
  if (tty) set_variable(exec.env, "TERM=" + host_term());
  for (const auto& kv : env_overrides) set_variable(exec.env, kv);
  exec.cwd = !cwd.empty() ? cwd : state.cwd.value_or("/");
  // The run's PWD names the run's directory: programs that trust it (as
  // shells do) must not be told they are there when --cwd moved them.
  bool has_pwd = std::any_of(exec.env.begin(), exec.env.end(), [](const auto& e) { return e.starts_with("PWD="); });
  if (!cwd.empty() && has_pwd) set_variable(exec.env, "PWD=" + cwd);
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
      if (!outcome.status.oom.empty()) say(host::describe_oom(outcome.status.oom, 0));
      return outcome.status.shell_status();
    case Kind::kStartFailed:
      // A working directory the VM lacks (the run's may be gone since) is
      // no missing command: 126, and a word on how to run elsewhere.
      if (outcome.message.find("cannot change directory") != std::string::npos) {
        say(fmt::format("error: {}{}", outcome.message,
                        cwd.empty() ? " (the run's working directory; --cwd DIR runs the command elsewhere)" : ""));
        return kExitCannotExec;
      }
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

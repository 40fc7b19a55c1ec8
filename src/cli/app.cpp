#include "cli/app.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>

#include "cli/commands.hpp"
#include "deploy/registry.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"
#include "util/trace.hpp"

namespace kestrel::cli {

namespace {

struct Command {
  const char* name;
  const char* summary;
  std::function<int(const Args&)> handler;
  int error_status;   // exit status when the handler throws
  bool sweep = true;  // reap orphaned and expired deployments first
};

const std::vector<Command>& command_table() {
  static const std::vector<Command> table = {
      {"run", "run a program in a fresh VM: kestrel run [OPTIONS] [--] PROGRAM [ARGS...]", cmd_run, kExitKestrel},
      {"exec", "run a command in a running VM: kestrel exec NAME 'CMD' -f DIR", cmd_exec, kExitKestrel},
      {"serial", "attach to a VM's serial console: kestrel serial NAME -f DIR", cmd_serial, 1},
      {"destroy", "tear deployments down: kestrel destroy -f DIR | NAME... | --all", cmd_destroy, 1},
      {"up", "bring up a topology of linked VMs: kestrel up FILE", cmd_up, kExitKestrel},
      {"down", "tear a topology down: kestrel down -f DIR", cmd_down, 1},
      {"link", "take a topology's link down or up: kestrel link A B down|up -f DIR", cmd_link, 1},
      {"ls", "list this user's deployments and their state: kestrel ls [--json]", cmd_ls, 1, false},
      {"gc", "destroy orphaned, expired and dead deployments: kestrel gc [--all] [--dry-run]", cmd_gc, 1, false},
      {"hold", "wait while kept VMs remain (a Slurm batch script's last line): kestrel hold", cmd_hold, 1},
      {"kernel", "manage guest kernels: kestrel kernel fetch | build | ls | rm", cmd_kernel, 1, false},
      {"image", "images with a test's prerequisites: kestrel image build RECIPE | ls | rm NAME", cmd_image, 1, false},
      {"cache", "manage warm-start templates and other cached files: kestrel cache ls | clear", cmd_cache, 1, false},
      {"cargo", "cargo with tests run in VMs: kestrel cargo test [ARGS...] (also nextest)", cmd_cargo, 1, false},
      {"go", "go with tests run in VMs: kestrel go test [ARGS...]", cmd_go, 1, false},
      {"config", "show the effective configuration and where each value comes from", cmd_config, 1, false},
      {"doctor", "check this host: QEMU, kernel, accelerator, disk, permissions, slots", cmd_doctor, 1, false},
  };
  return table;
}

void print_usage(FILE* out) {
  std::fprintf(out,
               "kestrel %s: run test binaries in throwaway VMs\n\n"
               "usage: kestrel COMMAND [ARGS...]\n\ncommands:\n",
               KESTREL_VERSION);
  for (const auto& c : command_table()) std::fprintf(out, "  %-9s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\n`kestrel COMMAND --help` explains each command. Defaults come from kestrel.toml,\n"
               "the user's config.toml and KESTREL_* variables: see `kestrel config --help`.\n\n"
               "exit status: run and exec return the program's status (128+N when it died of\n"
               "signal N); %d means the program ran past --timeout, %d that kestrel itself\n"
               "failed (e.g. the VM did not boot), %d/%d that the program could not be executed\n"
               "or was not found, %d a bad command line.\n",
               kExitTimeout, kExitKestrel, kExitCannotExec, kExitNotFound, kExitUsage);
}

bool is_help(const Args& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "-h" || a == "--help"; });
}

}  // namespace

void say(const std::string& message) {
  std::string line = "kestrel: " + message + "\n";
  // Messages may quote guest output (console lines): a terminal must not act
  // on its control sequences (an ESC[6n would make it type into our stdin).
  std::erase(line, '\r');
  for (char& c : line) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\n' && c != '\t') || u == 0x7f) c = '?';
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::string self_command() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "kestrel";
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path ? path : "", ':')) {
    if (dir.empty()) continue;
    auto candidate = std::filesystem::path(dir) / "kestrel";
    if (std::filesystem::equivalent(candidate, self, ec)) return "kestrel";
    if (::access(candidate.c_str(), X_OK) == 0) break;  // another kestrel comes first in PATH
  }
  return shell_quote(self.string());
}

static void open_closed_std_fds() {
  // A closed 0, 1 or 2 would be taken by the next descriptor we open (the
  // signalfd became "stdin" and was forwarded to the program, forever):
  // /dev/null takes its place first, as for any careful daemon.
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int got = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
    if (got != fd) {
      std::fprintf(stderr, "kestrel: error: cannot open /dev/null for closed descriptor %d\n", fd);
      std::_Exit(kExitKestrel);
    }
  }
}

int main(int argc, char** argv) {
  open_closed_std_fds();
  trace("main");
  // A closed stdout must surface as EPIPE in our writes, not kill us silently.
  ::signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    print_usage(stderr);
    return kExitUsage;
  }
  std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return 0;
  }
  if (name == "--version" || name == "version") {
    std::printf("kestrel %s\n", KESTREL_VERSION);
    return 0;
  }
  const auto& table = command_table();
  auto it = std::find_if(table.begin(), table.end(), [&](const Command& c) { return name == c.name; });
  if (it == table.end()) {
    std::string message = "unknown command '" + name + "'";
    auto best = std::min_element(table.begin(), table.end(), [&](const Command& a, const Command& b) {
      return edit_distance(name, a.name) < edit_distance(name, b.name);
    });
    if (edit_distance(name, best->name) <= 2) message += std::string(", did you mean '") + best->name + "'?";
    say("error: " + message + " (see `kestrel --help`)");
    return kExitUsage;
  }
  Args args(argv + 2, argv + argc);
  try {
    if (it->sweep && !is_help(args)) {
      deploy::GcPolicy policy;
      try {
        policy.keep_ttl_seconds = deploy::default_keep_ttl();
      } catch (const Error& e) {
        // A bad TTL must not expire anything: the sweep then only removes
        // orphans; `kestrel gc` and `kestrel doctor` report the error.
        policy.keep_ttl_seconds = std::numeric_limits<int64_t>::max();
        say(fmt::format("warning: {}; kept VMs do not expire until it is fixed", e.what()));
      }
      trace("started");
      deploy::sweep_quietly(policy);
      trace("start-up sweep done");
    }
    return it->handler(args);
  } catch (const CLI::ParseError& e) {
    say("error: " + std::string(e.what()) + " (see `kestrel " + name + " --help`)");
    return kExitUsage;
  } catch (const Error& e) {
    say("error: " + std::string(e.what()));
    return it->error_status;
  } catch (const std::exception& e) {
    say("error: " + std::string(e.what()));
    return it->error_status;
  }
}

}  // namespace kestrel::cli

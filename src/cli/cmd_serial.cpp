// kestrel serial NAME -f DIR: the VM's serial console.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>

#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "cli/terminal.hpp"
#include "cli/vm_target.hpp"
#include "host/agent_client.hpp"
#include "host/environment.hpp"
#include "util/error.hpp"
#include "util/io.hpp"
#include "util/lockfile.hpp"
#include "util/signals.hpp"
#include "util/socket.hpp"

namespace kestrel::cli {

namespace {

constexpr char kDetachKey = 0x1d;  // Ctrl-]

const char* kSerialHelp = R"(Attach to a VM's serial console: a root shell.

On a terminal: raw mode; detach with Ctrl-] (the VM keeps running).
Not on a terminal (scripted): standard input is sent to the console until it
ends, then whatever the VM prints is shown until the console rests on the
shell's prompt, quiet for --quiet-ms milliseconds (default 1000); the exit
status is 0. Input the shell could not read yet because a command was still
running is run after it, in order: kestrel waits for that, at most --wait-s
seconds (default 60) after input ends; if the shell is still busy then,
kestrel says so, and the rest runs later (its output lands in console.log).

The guest starts its console shell when input arrives. On attaching, kestrel
sends a newline and waits (at most 3 s) for the shell's prompt before it
forwards your input, so that nothing typed ahead gets mixed into the prompt.
On a terminal, kestrel also gives the console your window size (`stty size`
in the console shell shows it; again when the window changes); otherwise the
console is 24x80.

Everything the console printed since boot is in DIR/NAME/console.log.
)";

// Gives the guest's console tty the size of our terminal, with `stty` run
// over an agent port (a serial line carries no window size). Best effort:
// the console is what one uses when the agent is in trouble, so a silent or
// dead agent only costs a short wait.
void send_window_size(const VmTarget& target) {
  struct winsize ws {};
  if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return;
  try {
    host::AgentClient agent = host::AgentClient::connect(target.paths, 1, Deadline::after(std::chrono::seconds(2)));
    proto::Exec exec;
    // Not stty itself: an exec is a session leader, and a session leader
    // that opens a tty nobody controls makes it its controlling terminal,
    // then hangs it up on exit (flushing typed input, hanging up the
    // agent's watch on it). The shell's child is no session leader.
    exec.argv = {"/bin/sh", "-c", fmt::format("stty -F /dev/ttyS0 rows {} cols {}; :", ws.ws_row, ws.ws_col)};
    exec.env = host::default_exec_environment();
    exec.cwd = "/";
    UniqueFd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    host::ExecIo io;
    io.stdout_fd = io.stderr_fd = null.get();
    io.timeout = Deadline::after(std::chrono::seconds(2));
    agent.exec(exec, io);
  } catch (const Error&) {
    // The console works without it.
  }
}

}  // namespace

int cmd_serial(const Args& args) {
  std::string name, dir;
  int quiet_ms = 1000;
  int wait_s = 60;
  CLI::App app(kSerialHelp, "kestrel serial");
  app.add_option("name", name, "the VM's name")->required();
  app.add_option("-f,--dir", dir, "the deployment directory")->required();
  app.add_option("--quiet-ms", quiet_ms, "scripted mode: stop after this much silence")->check(CLI::Range(10, 600000));
  app.add_option("--wait-s", wait_s, "scripted mode: how long to wait for a busy shell after input ends")
      ->check(CLI::Range(0, 86400));
  if (!parse(app, args)) return 0;

  VmTarget target = find_vm(name, dir);
  LockFile lock = LockFile::try_lock(target.paths.serial_lock());
  if (!lock.locked()) fail("the console of VM {} is in use by another `kestrel serial`", name);
  UniqueFd sock = unix_connect(target.paths.serial());
  if (!sock) fail("cannot connect to the console of VM {} at {}", name, target.paths.serial().string());

  bool interactive = ::isatty(STDIN_FILENO);
  SignalFd signals({SIGINT, SIGTERM, SIGHUP, SIGWINCH});
  std::optional<RawTerminal> raw;
  if (interactive) {
    send_window_size(target);
    say(fmt::format("connected to the console of VM {}; detach with Ctrl-]", name));
    raw.emplace(STDIN_FILENO);
  }

  bool stdin_open = true;
  // Scripted mode ends after quiet_ms of silence on a prompt once input is
  // done. Without a prompt the shell still runs a command (and has input
  // waiting, typed ahead, that it runs next): the session waits for it, up
  // to busy_limit.
  Deadline quiet = Deadline::never();
  Deadline busy_limit = Deadline::never();
  // A newline wakes the console shell up (or shows a fresh prompt); input
  // waits until the console rests on a prompt (ends in "# " or "$ " and
  // stays quiet a moment: a shell that starts prints one for the newline too).
  write_all(sock.get(), "\n", "the console");
  Deadline prompt_wait = Deadline::after(std::chrono::seconds(3));
  Deadline prompt_rest = Deadline::never();
  bool prompted = false;
  std::string tail;  // the console's last two bytes
  auto on_prompt = [&] { return tail == "# " || tail == "$ " || tail == "> "; };
  char buf[65536];
  for (;;) {
    struct pollfd p[3] = {{sock.get(), POLLIN, 0}, {signals.fd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    prompted = prompted || prompt_rest.expired() || prompt_wait.expired();
    bool take_input = stdin_open && prompted;
    Deadline wake =
        take_input || !stdin_open ? quiet : Deadline::earliest(quiet, Deadline::earliest(prompt_wait, prompt_rest));
    int r = ::poll(p, take_input ? 3 : 2, wake.poll_timeout_ms());
    if (r < 0 && errno != EINTR) fail_errno("poll");
    if (r == 0 && quiet.expired()) {
      if (on_prompt()) break;
      if (busy_limit.expired()) {
        say(
            fmt::format("the console shell of VM {} is still busy after {} s: the input it has not read yet runs "
                        "when it is ready; its output goes to {}",
                        name, wait_s, target.paths.console_log().string()));
        break;
      }
      quiet = busy_limit;
      continue;
    }
    if (p[1].revents & POLLIN) {
      int signo = signals.take();
      if (signo == SIGWINCH) {
        if (interactive) send_window_size(target);
      } else if (signo != 0) {
        break;
      }
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read_some(sock.get(), buf);
      if (n <= 0) {
        if (interactive) raw.reset(), say("the console closed (the VM stopped)");
        break;
      }
      write_all(STDOUT_FILENO, std::string_view(buf, static_cast<size_t>(n)), "stdout");
      if (!stdin_open) quiet = Deadline::after(std::chrono::milliseconds(quiet_ms));
      tail += std::string_view(buf, static_cast<size_t>(n));
      if (tail.size() > 2) tail.erase(0, tail.size() - 2);
      if (!prompted) prompt_rest = on_prompt() ? Deadline::after(std::chrono::milliseconds(150)) : Deadline::never();
    }
    if (take_input && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read_some(STDIN_FILENO, buf);
      if (n <= 0) {
        stdin_open = false;
        if (interactive) break;
        quiet = Deadline::after(std::chrono::milliseconds(quiet_ms));
        busy_limit = Deadline::after(std::chrono::seconds(wait_s));
        continue;
      }
      std::string_view data(buf, static_cast<size_t>(n));
      if (interactive) {
        if (auto pos = data.find(kDetachKey); pos != std::string_view::npos) {
          write_all(sock.get(), data.substr(0, pos), "the console");
          break;
        }
      }
      write_all(sock.get(), data, "the console");
    }
  }
  raw.reset();
  if (interactive) std::fputs("\r\n", stderr);
  return 0;
}

}  // namespace kestrel::cli

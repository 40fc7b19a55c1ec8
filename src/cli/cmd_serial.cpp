// kestrel serial NAME -f DIR: the VM's serial console.
#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "cli/terminal.hpp"
#include "cli/vm_target.hpp"
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
ends, then whatever the VM prints is shown until it has been quiet for
--quiet-ms milliseconds (default 1000); the exit status is 0.

The guest starts its console shell when input arrives. On attaching, kestrel
sends a newline and waits (at most 3 s) for the shell's prompt before it
forwards your input, so that nothing typed ahead gets mixed into the prompt.

Everything the console printed since boot is in DIR/NAME/console.log.
)";

}  // namespace

int cmd_serial(const Args& args) {
  std::string name, dir;
  int quiet_ms = 1000;
  CLI::App app(kSerialHelp, "kestrel serial");
  app.add_option("name", name, "the VM's name")->required();
  app.add_option("-f,--dir", dir, "the deployment directory")->required();
  app.add_option("--quiet-ms", quiet_ms, "scripted mode: stop after this much silence")->check(CLI::Range(10, 600000));
  if (!parse(app, args)) return 0;

  VmTarget target = find_vm(name, dir);
  LockFile lock = LockFile::try_lock(target.paths.serial_lock());
  if (!lock.locked()) fail("the console of VM {} is in use by another `kestrel serial`", name);
  UniqueFd sock = unix_connect(target.paths.serial());
  if (!sock) fail("cannot connect to the console of VM {} at {}", name, target.paths.serial().string());

  bool interactive = ::isatty(STDIN_FILENO);
  SignalFd signals({SIGINT, SIGTERM, SIGHUP});
  std::optional<RawTerminal> raw;
  if (interactive) {
    say(fmt::format("connected to the console of VM {}; detach with Ctrl-]", name));
    raw.emplace(STDIN_FILENO);
  }

  bool stdin_open = true;
  // Scripted mode ends after quiet_ms of silence once input is done.
  Deadline quiet = Deadline::never();
  // A newline wakes the console shell up (or shows a fresh prompt); input
  // waits until the console rests on a prompt (ends in "# " or "$ " and
  // stays quiet a moment: a shell that starts prints one for the newline too).
  write_all(sock.get(), "\n", "the console");
  Deadline prompt_wait = Deadline::after(std::chrono::seconds(3));
  Deadline prompt_rest = Deadline::never();
  bool prompted = false;
  std::string tail;
  char buf[65536];
  for (;;) {
    struct pollfd p[3] = {{sock.get(), POLLIN, 0}, {signals.fd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    prompted = prompted || prompt_rest.expired() || prompt_wait.expired();
    bool take_input = stdin_open && prompted;
    Deadline wake =
        take_input || !stdin_open ? quiet : Deadline::earliest(quiet, Deadline::earliest(prompt_wait, prompt_rest));
    int r = ::poll(p, take_input ? 3 : 2, wake.poll_timeout_ms());
    if (r < 0 && errno != EINTR) fail_errno("poll");
    if (r == 0 && quiet.expired()) break;
    if (p[1].revents & POLLIN) break;
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read_some(sock.get(), buf);
      if (n <= 0) {
        if (interactive) raw.reset(), say("the console closed (the VM stopped)");
        break;
      }
      write_all(STDOUT_FILENO, std::string_view(buf, static_cast<size_t>(n)), "stdout");
      if (!stdin_open) quiet = Deadline::after(std::chrono::milliseconds(quiet_ms));
      if (!prompted) {
        tail += std::string_view(buf, static_cast<size_t>(n));
        if (tail.size() > 2) tail.erase(0, tail.size() - 2);
        bool on_prompt = tail == "# " || tail == "$ ";
        prompt_rest = on_prompt ? Deadline::after(std::chrono::milliseconds(150)) : Deadline::never();
      }
    }
    if (take_input && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read_some(STDIN_FILENO, buf);
      if (n <= 0) {
        stdin_open = false;
        if (interactive) break;
        quiet = Deadline::after(std::chrono::milliseconds(quiet_ms));
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

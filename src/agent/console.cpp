#include "agent/console.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "agent/log.hpp"
#include "agent/spawn.hpp"
#include "util/error.hpp"

namespace kestrel::agent {

namespace {

using namespace std::chrono_literals;

// A serial line carries no window size, and a tty left at 0x0 tells programs
// that lay out text (and `stty size`) that there is no screen at all. The
// usual 24x80 until `kestrel serial` sets the attaching terminal's size.
void default_window_size(int tty) {
  winsize ws{};
  if (::ioctl(tty, TIOCGWINSZ, &ws) != 0 || ws.ws_row != 0 || ws.ws_col != 0) return;
  ws.ws_row = 24;
  ws.ws_col = 80;
  if (::ioctl(tty, TIOCSWINSZ, &ws) != 0) log_errorf("cannot set the console's window size: {}", std::strerror(errno));
}

// True if all the input waiting on `tty` is one empty line: the newline
// `kestrel serial` sends on attaching (or an Enter) only asks for a shell,
// which would answer it with a second prompt. The newline is consumed.
bool take_lone_newline(int tty) {
  termios t{};
  int pending = 0;
  if (::tcgetattr(tty, &t) != 0 || !(t.c_lflag & ICANON)) return false;  // raw: every byte counts
  // In canonical mode only whole lines are readable: one byte is a newline.
  if (::ioctl(tty, FIONREAD, &pending) != 0 || pending != 1) return false;
  char c = 0;
  return ::read(tty, &c, 1) == 1 && c == '\n';
}

// A program that opens the console as its controlling terminal (an exec is
// a session leader; `stty size </dev/ttyS0` does it) hangs up every open
// file of the tty when it exits, our watch included: such a file polls
// readable for ever and every ioctl on it fails with EIO.
bool hung_up(int tty) {
  termios t{};
  return ::tcgetattr(tty, &t) != 0 && errno == EIO;
}

std::string current_hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "kestrel";
  return buf;
}

}  // namespace

void Console::start(const std::string& root) {
  root_ = root;
  quick_exits_ = 0;
  if (pid_ > 0) {
    // Someone uses the console: they get a shell in the new root. The old
    // shell leads the tty's session; when it dies the kernel hangs the tty
    // up, which would break a console fd opened before that. So the new shell
    // starts once the old one is reaped (on_exit), or after a pause.
    ::kill(-pid_, SIGKILL);
    dying_ = pid_;
    pid_ = -1;
    respawn_at_ = Deadline::after(2s);
  }
}

int Console::input_fd() {
  if (pid_ > 0 || dying_ > 0 || !quiet_until_.expired()) return -1;
  if (!watch_) {
    // Reopened after every shell: a session leader's exit hangs up every
    // open file of the tty, ours included.
    watch_ = UniqueFd(::open(options_.tty.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC));
    if (!watch_) {
      log_errorf("cannot open the console {}: {}", options_.tty, std::strerror(errno));
      quiet_until_ = Deadline::after(5s);
      return -1;
    }
  }
  return watch_.get();
}

void Console::on_input() {
  if (pid_ >= 0 || dying_ >= 0) return;
  if (watch_ && hung_up(watch_.get())) {
    watch_.reset();  // input_fd() opens a fresh one: is there input really?
    return;
  }
  if (watch_) take_lone_newline(watch_.get());
  spawn();
}

void Console::spawn() {
  respawn_at_ = Deadline::never();
  watch_.reset();
  UniqueFd tty(::open(options_.tty.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!tty) {
    log_errorf("cannot open the console {}: {}", options_.tty, std::strerror(errno));
    quiet_until_ = Deadline::after(5s);
    return;
  }
  default_window_size(tty.get());
  SpawnSpec spec;
  spec.argv = {options_.shell};
  // dash (a Debian guest root's /bin/sh) expands no escapes in PS1, so the
  // hostname goes in literally; the shell restarts after SETUP renames us.
  spec.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=linux",
              "PS1=" + current_hostname() + ":# "};
  spec.cwd = "/";
  spec.root = root_;
  spec.stdin_fd = spec.stdout_fd = spec.stderr_fd = spec.ctty_fd = tty.get();
  try {
    pid_ = spawn_process(spec);
  } catch (const Error& e) {
    if (!root_.empty()) {
      log_errorf("{}; starting the console shell outside the guest root", e.what());
      spec.root.clear();
      try {
        pid_ = spawn_process(spec);
      } catch (const Error& e2) {
        log_error(e2.what());
      }
    } else {
      log_error(e.what());
    }
  }
  if (pid_ < 0) {
    quiet_until_ = Deadline::after(5s);
    return;
  }
  started_at_ = Deadline::after(1s);
  debugf("console shell started (pid {})", pid_);
}

bool Console::on_exit(pid_t pid) {
  if (pid > 0 && pid == dying_) {
    dying_ = -1;
    respawn_at_ = Deadline::after(0ms);
    return true;
  }
  if (pid <= 0 || pid != pid_) return false;
  pid_ = -1;
  // A shell that exits (`exit`, Ctrl-D) comes back with the next input. One
  // that dies at once (a broken tty, a missing shell) is not retried before a
  // growing pause, so pending input cannot make it a hot loop.
  if (!started_at_.expired()) {
    quick_exits_ = quick_exits_ < 5 ? quick_exits_ + 1 : 5;
    quiet_until_ = Deadline::after(std::chrono::milliseconds(200 << quick_exits_));
  } else {
    quick_exits_ = 0;
  }
  return true;
}

void Console::tick() {
  if (pid_ < 0 && dying_ < 0 && respawn_at_.expired()) spawn();
}

}  // namespace kestrel::agent

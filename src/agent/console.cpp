#include "agent/console.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <vector>

#include "agent/log.hpp"
#include "agent/spawn.hpp"
#include "util/error.hpp"

namespace kestrel::agent {

namespace {

using namespace std::chrono_literals;

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
  if (pid_ < 0 && dying_ < 0) spawn();
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

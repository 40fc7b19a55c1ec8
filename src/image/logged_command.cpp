#include "image/logged_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

#include "assets/command.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/io.hpp"
#include "util/process.hpp"

namespace kestrel::image {

namespace {

constexpr size_t kTailLines = 40;

// Reads one pending signal from a non-blocking signalfd; 0 if none.
int pending_signal(int signal_fd) {
  signalfd_siginfo info;
  for (;;) {
    ssize_t n = ::read(signal_fd, &info, sizeof info);
    if (n != static_cast<ssize_t>(sizeof info)) return 0;
    if (info.ssi_signo != SIGWINCH) return static_cast<int>(info.ssi_signo);
  }
}

// SIGTERM first, so that the command cleans up after itself (mmdebstrap
// unmounts and removes its temporary tree); SIGKILL if it takes too long.
void stop(Child& child) {
  child.kill(SIGTERM);
  if (!child.wait(Deadline::after(std::chrono::seconds(20)))) child.kill_and_reap();
}

}  // namespace

std::string LoggedResult::tail_text(size_t lines) const {
  std::string out;
  size_t start = tail.size() > lines ? tail.size() - lines : 0;
  for (size_t i = start; i < tail.size(); ++i) out += (out.empty() ? "" : "\n") + tail[i];
  return out;
}

LoggedResult run_logged(const LoggedCommand& c) {
  UniqueFd log;
  if (!c.log.empty()) {
    log = UniqueFd(::open(c.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log) fail_errno("cannot create {}", c.log.string());
  }
  Pipe out = make_pipe();
  SpawnOptions options;
  options.argv = c.argv;
  options.env = assets::c_locale_environment();
  options.stdout_fd = out.write.get();
  options.stderr_fd = out.write.get();
  // Never outlive a killed kestrel, but leave the command time to clean up:
  // mmdebstrap's root mode has /proc and /sys mounted in its chroot.
  options.die_with_parent = true;
  options.death_signal = SIGTERM;
  Child child = Child::spawn(options);
  out.write.reset();

  LoggedResult result;
  std::string pending;
  auto add_line = [&](std::string line) {
    if (c.on_line) c.on_line(line);
    result.tail.push_back(std::move(line));
    if (result.tail.size() > kTailLines) result.tail.pop_front();
  };
  char buf[16384];
  for (bool open = true; open;) {
    pollfd fds[2] = {{out.read.get(), POLLIN, 0}, {c.signal_fd, POLLIN, 0}};
    int n = ::poll(fds, c.signal_fd >= 0 ? 2 : 1, c.deadline.poll_timeout_ms());
    if (n < 0 && errno != EINTR) fail_errno("cannot wait for {}", c.argv[0]);
    if (c.signal_fd >= 0 && (fds[1].revents & POLLIN)) {
      if (int signo = pending_signal(c.signal_fd)) {
        stop(child);
        throw Interrupted(signo);
      }
    }
    if (c.deadline.expired()) {
      stop(child);
      fail("{} did not finish in time; stopped it", c.argv[0]);
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t got = ::read(out.read.get(), buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      open = false;
      got = 0;
    }
    if (log && got > 0) (void)try_write_all(log.get(), std::string_view(buf, static_cast<size_t>(got)));
    pending.append(buf, static_cast<size_t>(got));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      add_line(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) add_line(pending);
  auto status = child.wait(c.deadline);
  if (!status) {
    child.kill_and_reap();
    fail("{} did not finish in time; killed it", c.argv[0]);
  }
  result.status = shell_status(*status);
  return result;
}

}  // namespace kestrel::image

#include "assets/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/io.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace kestrel::assets {

std::vector<std::string> c_locale_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view var(*e);
    if (var.starts_with("LC_ALL=") || var.starts_with("LANGUAGE=")) continue;
    env.emplace_back(var);
  }
  env.emplace_back("LC_ALL=C");
  return env;
}

CommandResult run_command(const std::vector<std::string>& argv, const std::filesystem::path& cwd, Deadline deadline) {
  Pipe out = make_pipe(), err = make_pipe();
  SpawnOptions options;
  options.argv = argv;
  options.env = c_locale_environment();
  options.stdout_fd = out.write.get();
  options.stderr_fd = err.write.get();
  options.cwd = cwd;
  Child child = Child::spawn(options);
  out.write.reset();
  err.write.reset();

  CommandResult result;
  struct Stream {
    UniqueFd* fd;
    std::string* text;
  };
  Stream streams[2] = {{&out.read, &result.out}, {&err.read, &result.err}};
  char buffer[65536];
  while (out.read || err.read) {
    pollfd fds[2];
    nfds_t n = 0;
    for (const Stream& s : streams)
      if (*s.fd) fds[n++] = {s.fd->get(), POLLIN, 0};
    int r = ::poll(fds, n, deadline.poll_timeout_ms());
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail_errno("poll on the output of {}", argv[0]);
    if (r == 0) {
      child.kill_and_reap();
      fail("{} did not finish in time and was killed", shell_join(argv));
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      for (Stream& s : streams) {
        if (!*s.fd || s.fd->get() != fds[i].fd) continue;
        ssize_t got = read_some(s.fd->get(), buffer);
        if (got < 0) fail_errno("cannot read the output of {}", argv[0]);
        if (got == 0)
          s.fd->reset();
        else
          s.text->append(buffer, static_cast<size_t>(got));
      }
    }
  }
  std::optional<int> status = child.wait(deadline);
  if (!status) {
    child.kill_and_reap();
    fail("{} did not finish in time and was killed", shell_join(argv));
  }
  result.status = shell_status(*status);
  return result;
}

namespace {

constexpr size_t kTailLines = 40;

// One pending signal from a non-blocking signalfd (SIGWINCH aside); 0 if none.
int pending_signal(int signal_fd) {
  signalfd_siginfo info;
  for (;;) {
    ssize_t n = ::read(signal_fd, &info, sizeof info);
    if (n != static_cast<ssize_t>(sizeof info)) return 0;
    if (info.ssi_signo != SIGWINCH) return static_cast<int>(info.ssi_signo);
  }
}

// SIGTERM to the process group first (make passes it on and removes its
// half-written targets; mmdebstrap unmounts and removes its temporary tree),
// SIGKILL if it lingers.
void stop(Child& child, std::chrono::seconds grace) {
  child.kill_group(SIGTERM);
  // A contained child's init kills everything itself when the grace is up.
  if (!child.wait(Deadline::after(grace + std::chrono::seconds(2)))) {
    child.kill_group(SIGKILL);
    child.kill_and_reap();
  }
}

}  // namespace

std::string StreamedResult::tail_text(size_t lines) const {
  std::string out;
  size_t start = tail.size() > lines ? tail.size() - lines : 0;
  for (size_t i = start; i < tail.size(); ++i) out += (out.empty() ? "" : "\n") + tail[i];
  return out;
}

StreamedResult run_streamed(const StreamedCommand& c) {
  UniqueFd log;
  if (!c.log.empty()) {
    log = UniqueFd(::open(c.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!log) fail_errno("cannot create {}", c.log.string());
  }
  Pipe out = make_pipe();
  SpawnOptions options;
  options.argv = c.argv;
  options.env = c.env.empty() ? c_locale_environment() : c.env;
  options.stdout_fd = out.write.get();
  options.stderr_fd = out.write.get();
  options.cwd = c.cwd;
  // A killed kestrel takes its build with it; SIGTERM lets make clean up and
  // mmdebstrap unmount the /proc and /sys of its chroot (root mode).
  options.die_with_parent = true;
  options.death_signal = SIGTERM;
  options.contain = c.contain;
  options.contain_grace_s = static_cast<int>(c.stop_grace.count());
  Child child = Child::spawn(options);
  out.write.reset();

  const std::string name = c.name.empty() ? shell_join(c.argv) : c.name;
  StreamedResult result;
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
    if (c.signal_fd >= 0 && n > 0 && (fds[1].revents & POLLIN)) {
      if (int signo = pending_signal(c.signal_fd)) {
        stop(child, c.stop_grace);
        throw Interrupted(signo);
      }
    }
    if (c.deadline.expired()) {
      stop(child, c.stop_grace);
      fail("{} did not finish in time; stopped it", name);
    }
    if (n <= 0 || !(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
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
  std::optional<int> status = child.wait(c.deadline);
  if (!status) {
    stop(child, c.stop_grace);
    fail("{} did not finish in time; stopped it", name);
  }
  result.status = shell_status(*status);
  return result;
}

std::string command_failure(const std::vector<std::string>& argv, const CommandResult& result) {
  std::string_view text = trim(result.err.empty() ? result.out : result.err);
  std::string summary = fmt::format("`{}` exited with status {}", shell_join(argv), result.status);
  if (text.empty()) return summary;
  // The last few lines are where apt and friends say what went wrong.
  std::vector<std::string> lines = split(text, '\n');
  size_t first = lines.size() > 4 ? lines.size() - 4 : 0;
  for (size_t i = first; i < lines.size(); ++i) {
    std::string_view line = trim(lines[i]);
    if (!line.empty()) summary += fmt::format("\n  {}", line);
  }
  return summary;
}

}  // namespace kestrel::assets

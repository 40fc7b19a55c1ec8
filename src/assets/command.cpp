#include "assets/command.hpp"

#include <fcntl.h>
#include <poll.h>
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

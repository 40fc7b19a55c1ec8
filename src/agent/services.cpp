#include "agent/services.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>

#include "agent/log.hpp"
#include "agent/setup.hpp"
#include "agent/spawn.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/process.hpp"

namespace kestrel::agent {

namespace {

using namespace std::chrono_literals;
using proto::Readiness;

constexpr auto kCheckInterval = 50ms;
// A TCP connect to ourselves answers at once; this only bounds a stuck one.
constexpr auto kConnectLimit = 1000ms;
constexpr size_t kTailLines = 10;
constexpr size_t kTailBytes = 16 * 1024;
constexpr const char* kOverran = "the last check was still running at the deadline";

// "/bin/sh -c COMMAND" in the guest root, as every service runs.
pid_t start_shell(const std::string& command, const std::string& root, int stdin_fd, int output_fd) {
  SpawnSpec spec;
  spec.argv = {"/bin/sh", "-c", command};
  spec.env = service_environment();
  spec.cwd = "/";
  spec.root = root;
  spec.stdin_fd = stdin_fd;
  spec.stdout_fd = output_fd;
  spec.stderr_fd = output_fd;
  return spawn_process(spec);
}

// waitpid(pid) until it exits or the deadline passes, watching `pidfd` (or
// napping briefly without one). Returns the wait status if it exited.
std::optional<int> wait_for(pid_t pid, int pidfd, Deadline deadline) {
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) fail_errno("cannot wait for process {}", pid);
    if (deadline.expired()) return std::nullopt;
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      ::poll(&p, 1, deadline.poll_timeout_ms());
    } else {
      std::this_thread::sleep_for(
          std::min<std::chrono::milliseconds>(5ms, std::chrono::milliseconds(deadline.poll_timeout_ms())));
    }
  }
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status))
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), ::strsignal(WTERMSIG(status)));
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

bool tcp_accepts(uint16_t port, Deadline deadline) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail_errno("cannot create a TCP socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{fd.get(), POLLOUT, 0};
  if (::poll(&p, 1, Deadline::earliest(deadline, Deadline::after(kConnectLimit)).poll_timeout_ms()) <= 0) return false;
  int err = 0;
  socklen_t len = sizeof err;
  return ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
}

// The path resolves in the guest root (its /var/run -> /run included).
bool unix_accepts(const std::string& path, const std::string& root) {
  RootScope scope(root);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) fail_errno("cannot create a unix socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof addr.sun_path - 1));
  // EAGAIN: a full backlog, but someone listens.
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN;
}

// One try of a readiness command, killed (its whole group) at the deadline.
// Returns how it ended, for the timeout message ("" when it succeeded).
std::string run_check(const std::string& command, const std::string& root, int null_fd, Deadline deadline) {
  pid_t pid = start_shell(command, root, null_fd, null_fd);
  UniqueFd pidfd = open_pidfd(pid);
  std::optional<int> status = wait_for(pid, pidfd.get(), deadline);
  if (!status) {
    ::kill(-pid, SIGKILL);
    int ignored;
    while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    return kOverran;
  }
  if (WIFEXITED(*status) && WEXITSTATUS(*status) == 0) return "";
  return "the last check " + describe_status(*status);
}

class Service {
 public:
  Service(const proto::ServiceRequest& request, const std::string& root, const std::string& log_dir)
      : request_(request), root_(root), log_path_(log_dir + "/" + request.name + ".log") {
    ready_ = proto::parse_readiness(request.ready);
    {
      RootScope scope(root);
      try {
        make_dirs_p(log_dir);
      } catch (const Error& e) {
        fail("cannot start service {}: {}", request.name, e.what());
      }
      log_ = UniqueFd(::open(log_path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      if (!log_) fail_errno("cannot start service {}: cannot open {}", request.name, log_path_);
    }
    null_ = UniqueFd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!null_) fail_errno("cannot open /dev/null");
  }

  void run() {
    Deadline deadline = Deadline::after(std::chrono::milliseconds(request_.timeout_ms));
    try {
      pid_ = start_shell(request_.command, root_, null_.get(), log_.get());
    } catch (const Error& e) {
      fail("cannot start service {}: {}", request_.name, e.what());
    }
    debugf("service {}: started as {}", request_.name, pid_);
    UniqueFd pidfd = open_pidfd(pid_);
    bool running = true;
    std::string last_check;
    for (;;) {
      if (running) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r < 0 && errno != EINTR) fail_errno("cannot wait for service {}", request_.name);
        if (r == pid_) {
          running = false;
          if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            std::string before =
                ready_.kind == Readiness::Kind::kExited ? "" : fmt::format(" before it was ready ({})", request_.ready);
            throw Error(with_log(fmt::format("service {} {}{}", request_.name, describe_status(status), before)));
          }
          if (ready_.kind == Readiness::Kind::kExited) return;
        }
      }
      if (ready_.kind != Readiness::Kind::kExited) {
        std::string result = check(deadline);
        if (result.empty()) return;
        // A try cut short by the deadline says less than the one before it.
        if (result != kOverran || last_check.empty()) last_check = std::move(result);
      }
      if (deadline.expired()) break;
      // Until the next check, or at once when the service exits.
      Deadline nap = Deadline::earliest(Deadline::after(kCheckInterval), deadline);
      if (running && pidfd)
        wait_exited(pidfd.get(), nap);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(nap.poll_timeout_ms()));
    }
    std::string what = ready_.kind == Readiness::Kind::kExited ? "its command had not finished" : request_.ready;
    std::string check_note = ready_.kind == Readiness::Kind::kCommand && !last_check.empty() ? "; " + last_check : "";
    throw Error(with_log(fmt::format("service {} was not ready ({}) within {:g} s{}", request_.name, what,
                                     request_.timeout_ms / 1000.0, check_note)));
  }

 private:
  // One readiness check; "" when ready, else what the last try said.
  std::string check(Deadline deadline) {
    switch (ready_.kind) {
      case Readiness::Kind::kTcp:
        return tcp_accepts(ready_.port, deadline) ? "" : "not ready";
      case Readiness::Kind::kUnix:
        return unix_accepts(ready_.text, root_) ? "" : "not ready";
      case Readiness::Kind::kCommand:
        return command_check(deadline);
      case Readiness::Kind::kExited:
        break;
    }
    return "";
  }

  std::string command_check(Deadline deadline) {
    try {
      return run_check(ready_.text, root_, null_.get(), deadline);
    } catch (const Error& e) {
      fail("cannot check whether service {} is ready: {}", request_.name, e.what());
    }
  }

  // message + the end of the service's log.
  std::string with_log(const std::string& message) const {
    struct stat st {};
    if (::fstat(log_.get(), &st) != 0 || st.st_size == 0) return fmt::format("{}; {} is empty", message, log_path_);
    size_t size = static_cast<size_t>(st.st_size);
    size_t from = size > kTailBytes ? size - kTailBytes : 0;
    std::string tail(size - from, '\0');
    ssize_t n = ::pread(log_.get(), tail.data(), tail.size(), static_cast<off_t>(from));
    tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return fmt::format("{}; last lines of {}:\n{}", message, log_path_, last_lines(tail, kTailLines));
  }

  const proto::ServiceRequest& request_;
  std::string root_;
  std::string log_path_;
  Readiness ready_;
  UniqueFd log_, null_;
  pid_t pid_ = -1;
};

}  // namespace

const std::vector<std::string>& service_environment() {
  static const std::vector<std::string> env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                               "HOME=/root", "LANG=C.UTF-8", "TERM=dumb"};
  return env;
}

std::string last_lines(std::string_view text, size_t count) {
  if (text.ends_with('\n')) text.remove_suffix(1);
  size_t start = text.size();
  for (size_t seen = 0; start > 0; --start) {
    if (text[start - 1] == '\n' && ++seen == count) break;
  }
  return std::string(text.substr(start));
}

void run_service(const proto::ServiceRequest& request, const std::string& root, const std::string& log_dir) {
  request.validate();
  Service service(request, root, log_dir);
  service.run();
  debugf("service {}: ready", request.name);
}

}  // namespace kestrel::agent

#include "util/process.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/error.hpp"
#include "util/io.hpp"

extern char** environ;

namespace kestrel {

int exec_replacing(const std::string& file, const std::vector<std::string>& argv) {
  std::vector<char*> c_argv;
  for (const auto& a : argv) c_argv.push_back(const_cast<char*>(a.c_str()));
  c_argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execvp(file.c_str(), c_argv.data());
  return errno;
}

UniqueFd open_pidfd(pid_t pid) { return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))); }

bool wait_exited(int pidfd, Deadline deadline) {
  if (pidfd < 0) return false;
  struct pollfd p = {pidfd, POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, deadline.poll_timeout_ms());
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) fail_errno("poll on a pidfd");
  }
}

int shell_status(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Pipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail_errno("cannot create a pipe");
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

namespace {

// Async-signal-safe: system calls only. Without CAP_SETPCAP (not root) the
// bounding set cannot shrink, and there is nothing in it to fear either.
void drop_capabilities(const std::vector<int>& caps) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  bool have = syscall(SYS_capget, &header, data) == 0;
  for (int cap : caps) {
    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
    if (have && cap >= 0 && cap < 32 * _LINUX_CAPABILITY_U32S_3) data[cap / 32].inheritable &= ~(1u << (cap % 32));
  }
  // Ambient capabilities need inheritable ones: lowering those drops them too.
  if (have) syscall(SYS_capset, &header, data);
}

// Async-signal-safe. With the scheduler's autogroups (Debian's default) a
// new session is a new group, and groups share the CPU as equals at the
// group's own nice value, 0: a `nice kestrel ...` would run its QEMU or make
// at full priority. So a session of ours gets our nice value (raising it
// needs no privilege; a kernel without autogroups has no file to write).
void keep_nice_in_new_autogroup() {
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);
  if (errno != 0 || nice <= 0) return;
  char text[8];
  int n = 0;
  if (nice >= 10) text[n++] = static_cast<char>('0' + nice / 10);
  text[n++] = static_cast<char>('0' + nice % 10);
  text[n++] = '\n';
  int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!write(fd, text, static_cast<size_t>(n));
  close(fd);
}

// Runs in the forked child: only async-signal-safe calls from here on.
// Returns only on failure, with errno set.
void child_setup_and_exec(const SpawnOptions& o, char** argv, char** envp, int devnull, int* err_pipe, pid_t parent) {
  // Reset signal dispositions and the mask we may have set for our event loop.
  sigset_t all;
  sigemptyset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) signal(sig, SIG_DFL);

  if (o.new_session) {
    setsid();
    keep_nice_in_new_autogroup();
  }
  if (!o.drop_capabilities.empty()) drop_capabilities(o.drop_capabilities);
  if (o.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, o.death_signal);
    if (getppid() != parent) _exit(127);  // the parent died before the prctl
  }

  // Gather every (source, target) pair, moving sources out of the way first so
  // that no dup2 clobbers a source that is still needed.
  int sources[64], targets[64];
  int n = 0;
  sources[n] = o.stdin_fd >= 0 ? o.stdin_fd : devnull, targets[n++] = 0;
  if (o.stdout_fd >= 0) sources[n] = o.stdout_fd, targets[n++] = 1;
  if (o.stderr_fd >= 0) sources[n] = o.stderr_fd, targets[n++] = 2;
  for (const auto& [from, to] : o.extra_fds) {
    if (n == 64) break;
    sources[n] = from, targets[n++] = to;
  }
  int max_target = 2;
  for (int i = 0; i < n; ++i) {
    if (targets[i] > max_target) max_target = targets[i];
  }
  int moved_pipe = fcntl(*err_pipe, F_DUPFD_CLOEXEC, max_target + 1);
  if (moved_pipe < 0) return;
  *err_pipe = moved_pipe;
  for (int i = 0; i < n; ++i) {
    int moved = fcntl(sources[i], F_DUPFD_CLOEXEC, max_target + 1);
    if (moved < 0) return;
    sources[i] = moved;
  }
  for (int i = 0; i < n; ++i) {
    if (dup2(sources[i], targets[i]) < 0) return;
  }
  // Low descriptors nobody asked for are closed; everything above the targets
  // (our moved copies, the error pipe, anything inherited) closes on exec.
  for (int fd = 3; fd <= max_target; ++fd) {
    bool wanted = false;
    for (int i = 0; i < n; ++i) wanted = wanted || targets[i] == fd;
    if (!wanted) close(fd);
  }
  syscall(SYS_close_range, max_target + 1, ~0U, CLOSE_RANGE_CLOEXEC);
  if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) return;
  if (envp)
    execvpe(argv[0], argv, envp);
  else
    execvp(argv[0], argv);
}

}  // namespace

Child Child::spawn(const SpawnOptions& o) {
  if (o.argv.empty()) fail("cannot start a process: empty command line");
  auto argv = c_strings(o.argv);
  std::vector<char*> envp;
  if (o.env) envp = c_strings(*o.env);

  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) fail_errno("cannot open /dev/null");
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail_errno("pipe2");
  UniqueFd err_read(pipe_fds[0]), err_write(pipe_fds[1]);

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) fail_errno("cannot fork to start {}", o.argv[0]);
  if (pid == 0) {
    int err_fd = err_write.get();
    child_setup_and_exec(o, argv.data(), o.env ? envp.data() : nullptr, devnull.get(), &err_fd, parent);
    int err = errno;
    ssize_t ignored = ::write(err_fd, &err, sizeof err);
    (void)ignored;
    ::_exit(127);
  }

  err_write.reset();
  Child child;
  child.pid_ = pid;
  child.pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(err_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n == sizeof child_errno) {
    child.wait(Deadline::never());
    child.pid_ = -1;
    throw sys_error(child_errno, fmt::format("cannot execute {}", o.argv[0]));
  }
  if (!child.pidfd_) fail_errno("pidfd_open for {}", o.argv[0]);
  return child;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (valid()) kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    status_ = other.status_;
  }
  return *this;
}

Child::~Child() {
  if (valid() && !status_) kill_and_reap();
}

std::optional<int> Child::try_wait() {
  if (status_) return status_;
  if (!valid()) return std::nullopt;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) status_ = status;
  if (r < 0 && errno == ECHILD) status_ = 0;  // reaped elsewhere; nothing more to learn
  return status_;
}

std::optional<int> Child::wait(Deadline deadline) {
  for (;;) {
    if (auto s = try_wait()) return s;
    if (!valid()) return std::nullopt;
    if (deadline.expired()) return std::nullopt;
    if (pidfd_) {
      struct pollfd p = {pidfd_.get(), POLLIN, 0};
      int r = ::poll(&p, 1, deadline.poll_timeout_ms());
      if (r < 0 && errno != EINTR) fail_errno("poll on pidfd");
    } else {
      ::usleep(2000);
    }
  }
}

void Child::kill(int sig) {
  if (!valid() || status_) return;
  if (pidfd_)
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), sig, nullptr, 0);
  else
    ::kill(pid_, sig);
}

void Child::kill_and_reap() {
  if (!valid()) return;
  kill(SIGKILL);
  wait(Deadline::never());
}

pid_t Child::release() {
  pidfd_.reset();
  return std::exchange(pid_, -1);
}

}  // namespace kestrel

#include "util/process.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
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
  for (int sig : o.blocked_signals) sigaddset(&all, sig);
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

// A fork that takes no lock of the C library's: safe in a child of a
// raw clone, where another thread may have held one when we were copied.
pid_t raw_fork(unsigned long flags) {
  return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

void report_and_exit(int err_fd) {
  int err = errno;
  (void)!::write(err_fd, &err, sizeof err);
  ::_exit(127);
}

void ignore_signal(int) {}

// PID 1 of a new PID and mount namespace (SpawnOptions::contain): starts the
// program, passes stop signals on, reaps, and ends with the program's status
// (128+N for a death by signal N). Async-signal-safe calls only.
[[noreturn]] void namespace_init(const SpawnOptions& o, char** argv, char** envp, int devnull, int err_fd,
                                 int parent_pidfd) {
  sigset_t handled;
  sigemptyset(&handled);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGALRM}) sigaddset(&handled, sig);
  sigprocmask(SIG_BLOCK, &handled, nullptr);
  // PID 1 gets only the signals it has a handler for: a no-op one, and
  // sigwaitinfo below takes them.
  struct sigaction sa {};
  sa.sa_handler = ignore_signal;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGALRM}) sigaction(sig, &sa, nullptr);
  if (o.die_with_parent) {
    prctl(PR_SET_PDEATHSIG, o.death_signal);
    struct pollfd p = {parent_pidfd, POLLIN, 0};
    if (poll(&p, 1, 0) != 0) _exit(127);  // the parent died before the prctl
  }
  setsid();
  keep_nice_in_new_autogroup();
  // Mounts made here stay here and go with the namespace.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) report_and_exit(err_fd);
  pid_t program = raw_fork(0);
  if (program < 0) report_and_exit(err_fd);
  if (program == 0) {
    child_setup_and_exec(o, argv, envp, devnull, &err_fd, 1);
    report_and_exit(err_fd);
  }
  close(err_fd);  // the program's copy closes on exec: the parent learns it ran
  bool stopping = false;
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&handled, &info);
    if (sig == SIGCHLD) {
      int status = 0;
      for (pid_t r; (r = waitpid(-1, &status, WNOHANG)) > 0;) {
        if (r != program) continue;
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
      }
    } else if (sig == SIGALRM) {
      _exit(128 + SIGKILL);  // the kernel kills the rest with us
    } else if (sig > 0) {
      kill(-program, sig);
      kill(program, sig);
      if (!stopping) alarm(static_cast<unsigned>(o.contain_grace_s > 0 ? o.contain_grace_s : 1));
      stopping = true;
    }
  }
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
  bool contain = o.contain && ::geteuid() == 0;
  UniqueFd parent_pidfd;
  if (contain) {
    parent_pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, parent, 0)));
    if (!parent_pidfd) fail_errno("pidfd_open of our own process");
  }
  pid_t pid = contain ? raw_fork(CLONE_NEWPID | CLONE_NEWNS) : ::fork();
  if (pid < 0) fail_errno("cannot {} to start {}", contain ? "clone a new PID namespace" : "fork", o.argv[0]);
  if (pid == 0) {
    int err_fd = err_write.get();
    if (o.detached) {
      pid_t grandchild = raw_fork(0);
      if (grandchild < 0) report_and_exit(err_fd);
      if (grandchild > 0) ::_exit(0);
      parent = ::getppid();  // reparented, or about to be: die_with_parent makes no sense here
    }
    if (contain)
      namespace_init(o, argv.data(), o.env ? envp.data() : nullptr, devnull.get(), err_fd, parent_pidfd.get());
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
  if (o.detached) {  // the go-between has exited (or is about to): reap it
    child.wait(Deadline::never());
    child.pid_ = -1;
    return child;
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

void Child::kill_group(int sig) {
  if (!valid() || status_) return;
  ::kill(-pid_, sig);  // not reaped: its pid, and so its group's id, is not reused
  kill(sig);
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

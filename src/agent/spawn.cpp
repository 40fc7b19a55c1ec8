#include "agent/spawn.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "util/error.hpp"
#include "util/process.hpp"

namespace kestrel::agent {

namespace {

// What the child was doing when it failed, for the error message.
enum class Step { kNone, kSignals, kSession, kTerminal, kDescriptors, kRoot, kCwd, kExec };

// Shared between the caller and the child: the child runs in our memory
// (CLONE_VM) while we are suspended (CLONE_VFORK), as posix_spawn does, so it
// reports a failure by writing here before _exit. This is cheaper than fork
// (no page tables to copy), which matters under TCG.
struct ChildContext {
  const char* root = nullptr;
  const char* cwd = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* const* candidates = nullptr;
  int fds[3] = {-1, -1, -1};
  int ctty = -1;
  volatile int err = 0;
  volatile Step step = Step::kNone;
};

constexpr size_t kChildStackSize = 64 * 1024;
alignas(64) char g_child_stack[kChildStackSize];

[[noreturn]] void child_fail(ChildContext* c, Step step, int err) {
  c->err = err;
  c->step = step;
  _exit(127);
}

bool exec_should_try_next(int err) {
  return err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT || err == EACCES;
}

// Runs on g_child_stack in our address space: only plain system calls from
// here on, no allocation, no locks.
int child_main(void* arg) {
  auto* c = static_cast<ChildContext*>(arg);

  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 32; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, nullptr) != 0) child_fail(c, Step::kSignals, errno);

  if (setsid() < 0) child_fail(c, Step::kSession, errno);
  if (c->ctty >= 0 && ioctl(c->ctty, TIOCSCTTY, 1) != 0) child_fail(c, Step::kTerminal, errno);

  // Move sources that sit on another target's number out of the way first.
  int src[3];
  for (int i = 0; i < 3; ++i) {
    src[i] = c->fds[i];
    if (src[i] < 3 && src[i] != i) {
      src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
      if (src[i] < 0) child_fail(c, Step::kDescriptors, errno);
    }
  }
  for (int i = 0; i < 3; ++i) {
    // dup2 onto itself keeps FD_CLOEXEC, so clear the flag instead.
    int r = src[i] == i ? fcntl(i, F_SETFD, 0) : dup2(src[i], i);
    if (r < 0) child_fail(c, Step::kDescriptors, errno);
  }
  syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

  if (c->root) {
    if (chroot(c->root) != 0) child_fail(c, Step::kRoot, errno);
    if (chdir("/") != 0) child_fail(c, Step::kRoot, errno);
  }
  if (chdir(c->cwd) != 0) child_fail(c, Step::kCwd, errno);

  int err = ENOENT;
  bool saw_eacces = false;
  for (const char* const* p = c->candidates; *p; ++p) {
    execve(*p, c->argv, c->envp);
    err = errno;
    if (!exec_should_try_next(err)) break;
    if (err == EACCES) saw_eacces = true;
  }
  if (saw_eacces && exec_should_try_next(err)) err = EACCES;
  child_fail(c, Step::kExec, err);
}

void check_c_string(std::string_view s, std::string_view program, const char* what) {
  if (s.find('\0') != std::string_view::npos) fail("cannot execute '{}': {} contains a NUL byte", program, what);
}

// Why execve() said E2BIG, in the kernel's terms (fs/exec.c): the strings
// plus their pointers may take a quarter of the stack limit, clamped to
// [128 KiB, 6 MiB], and no single string more than MAX_ARG_STRLEN (32 pages).
std::string e2big_detail(const SpawnSpec& spec) {
  constexpr size_t kMaxArgStrlen = 32 * 4096;
  constexpr size_t kFloor = 32 * 4096;
  constexpr size_t kCeiling = 6u << 20;
  size_t strings = 0, longest = 0, longest_at = 0;
  for (size_t i = 0; i < spec.argv.size() + spec.env.size(); ++i) {
    const std::string& s = i < spec.argv.size() ? spec.argv[i] : spec.env[i - spec.argv.size()];
    strings += s.size() + 1;
    if (s.size() + 1 > longest) longest = s.size() + 1, longest_at = i;
  }
  size_t total = strings + (spec.argv.size() + spec.env.size()) * sizeof(char*);
  rlimit stack{};
  ::getrlimit(RLIMIT_STACK, &stack);
  size_t limit = stack.rlim_cur == RLIM_INFINITY ? kCeiling : std::min<size_t>(stack.rlim_cur / 4, kCeiling);
  limit = std::max(limit, kFloor);
  std::string out = fmt::format(
      "{} arguments and {} environment entries take {} bytes with their pointers; the guest kernel accepts {} "
      "(a quarter of the stack limit, {})",
      spec.argv.size(), spec.env.size(), total, limit,
      stack.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(stack.rlim_cur) + " bytes");
  if (longest > kMaxArgStrlen) {
    bool arg = longest_at < spec.argv.size();
    out += fmt::format("; {} {} has {} bytes, more than the {} allowed for one", arg ? "argument" : "environment entry",
                       arg ? longest_at : longest_at - spec.argv.size(), longest, kMaxArgStrlen);
  }
  return out;
}

std::string describe_failure(const SpawnSpec& spec, Step step, int err) {
  const std::string& program = spec.argv[0];
  switch (step) {
    case Step::kCwd:
      return fmt::format("cannot execute '{}': cannot change directory to '{}': {}", program, spec.cwd,
                         std::strerror(err));
    case Step::kRoot:
      return fmt::format("cannot execute '{}': cannot enter the guest root '{}': {}", program, spec.root,
                         std::strerror(err));
    case Step::kTerminal:
      return fmt::format("cannot execute '{}': cannot acquire the controlling terminal: {}", program,
                         std::strerror(err));
    case Step::kDescriptors:
      return fmt::format("cannot execute '{}': cannot set up standard descriptors: {}", program, std::strerror(err));
    case Step::kSignals:
    case Step::kSession:
      return fmt::format("cannot execute '{}': cannot set up the session: {}", program, std::strerror(err));
    case Step::kExec:
      if (err == E2BIG)
        return fmt::format("cannot execute '{}': {} (E2BIG): {}", program, std::strerror(err), e2big_detail(spec));
      break;
    case Step::kNone:
      break;
  }
  return fmt::format("cannot execute '{}': {}", program, std::strerror(err));
}

}  // namespace

std::vector<std::string> exec_candidates(const std::string& argv0, const std::vector<std::string>& env) {
  if (argv0.find('/') != std::string::npos) return {argv0};
  if (argv0.empty()) return {};
  std::string_view path = "/bin:/usr/bin";
  for (const auto& e : env) {
    if (e.starts_with("PATH=")) {
      path = std::string_view(e).substr(5);
      break;
    }
  }
  std::vector<std::string> out;
  for (;;) {
    size_t colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    if (dir.empty()) {
      out.push_back(argv0);
    } else {
      std::string candidate(dir);
      if (candidate.back() != '/') candidate += '/';
      out.push_back(candidate + argv0);
    }
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

pid_t spawn_process(const SpawnSpec& spec) {
  if (spec.argv.empty()) fail("cannot execute a program: empty argv");
  const std::string& program = spec.argv[0];
  for (const auto& a : spec.argv) check_c_string(a, program, "an argument");
  for (const auto& e : spec.env) check_c_string(e, program, "an environment entry");
  check_c_string(spec.cwd, program, "the working directory");
  if (spec.stdin_fd < 0 || spec.stdout_fd < 0 || spec.stderr_fd < 0)
    fail("cannot execute '{}': standard descriptors missing", program);

  auto argv = c_strings(spec.argv);
  auto envp = c_strings(spec.env);
  auto candidate_strings = exec_candidates(program, spec.env);
  std::vector<const char*> candidates;
  for (const auto& s : candidate_strings) candidates.push_back(s.c_str());
  candidates.push_back(nullptr);

  ChildContext c;
  c.root = spec.root.empty() ? nullptr : spec.root.c_str();
  c.cwd = spec.cwd.empty() ? "/" : spec.cwd.c_str();
  c.argv = argv.data();
  c.envp = envp.data();
  c.candidates = candidates.data();
  c.fds[0] = spec.stdin_fd;
  c.fds[1] = spec.stdout_fd;
  c.fds[2] = spec.stderr_fd;
  c.ctty = spec.ctty_fd;

  pid_t pid = ::clone(child_main, g_child_stack + kChildStackSize, CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
  if (pid < 0) fail_errno("cannot start '{}'", program);
  // We resume once the child has exec'd or exited.
  if (c.step != Step::kNone) {
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw Error(describe_failure(spec, c.step, c.err));
  }
  return pid;
}

}  // namespace kestrel::agent

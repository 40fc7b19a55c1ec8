#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"
#include "util/process.hpp"
#include "util/strings.hpp"

namespace kestrel {
namespace {

TEST(Process, SpawnWaitAndStatus) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "exit 3"};
  Child c = Child::spawn(o);
  auto st = c.wait(Deadline::after(std::chrono::seconds(5)));
  ASSERT_TRUE(st);
  EXPECT_EQ(shell_status(*st), 3);
}

TEST(Process, MissingProgramThrows) {
  SpawnOptions o;
  o.argv = {"/nonexistent/program"};
  EXPECT_THROW(Child::spawn(o), Error);
}

TEST(Process, DestructorKillsAndDeadlineExpires) {
  SpawnOptions o;
  o.argv = {"sleep", "100"};
  pid_t pid;
  {
    Child c = Child::spawn(o);
    pid = c.pid();
    EXPECT_FALSE(c.wait(Deadline::after(std::chrono::milliseconds(50))));
  }
  EXPECT_NE(::kill(pid, 0), 0);  // killed and reaped
}

TEST(Process, ExtraFdsArriveAtTheirNumbers) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "echo hi >&5"};
  o.extra_fds = {{p[1], 5}};
  Child c = Child::spawn(o);
  ::close(p[1]);
  c.wait(Deadline::never());
  char buf[8] = {};
  EXPECT_EQ(::read(p[0], buf, sizeof buf), 3);
  EXPECT_STREQ(buf, "hi\n");
  ::close(p[0]);
}

// `nice kestrel run` must make its QEMU nice: a child in a session of its own
// is, with the scheduler's autogroups, a CPU group of its own at the group's
// nice value (0 by default), whatever the task's. The child's group gets ours.
TEST(Process, ANewSessionKeepsOurNiceValue) {
  if (::access("/proc/self/autogroup", F_OK) != 0) GTEST_SKIP() << "no autogroups in this kernel";
  TempDir t("/tmp", "kestrel-nice-");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // niced for good: in a child of the test
    if (::setpriority(PRIO_PROCESS, 0, 13) != 0) ::_exit(2);
    SpawnOptions o;
    o.argv = {"/bin/sh", "-c", "cat /proc/self/autogroup >" + (t.path() / "group").string()};
    try {
      Child c = Child::spawn(o);
      auto st = c.wait(Deadline::after(std::chrono::seconds(5)));
      ::_exit(st && shell_status(*st) == 0 ? 0 : 3);
    } catch (...) {
      ::_exit(4);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // "/autogroup-1234 nice 13"
  std::string group = read_file(t.path() / "group");
  EXPECT_NE(group.find(" nice 13"), std::string::npos) << group;
}

// QEMU is started this way so that a root kestrel's guest cannot make device
// nodes or give files away in a read-write share (docs/isolation.md).
TEST(Process, DroppedCapabilitiesAreGoneForTheChildAndItsPrograms) {
  TempDir t("/tmp", "kestrel-caps-");
  SpawnOptions o;
  // A shell in between: what it runs cannot regain them either.
  o.argv = {"/bin/sh", "-c",
            "/bin/sh -c 'grep -E \"^Cap(Bnd|Prm|Eff|Inh)\" /proc/self/status' >" + (t.path() / "caps").string()};
  o.drop_capabilities = {CAP_MKNOD, CAP_CHOWN};
  Child c = Child::spawn(o);
  auto st = c.wait(Deadline::after(std::chrono::seconds(5)));
  ASSERT_TRUE(st);
  ASSERT_EQ(shell_status(*st), 0);
  for (const auto& line : split(read_file(t.path() / "caps"), '\n')) {
    if (line.empty()) continue;
    uint64_t mask = std::stoull(line.substr(line.find(':') + 1), nullptr, 16);
    if (::geteuid() == 0 || line.rfind("CapBnd", 0) != 0) {
      EXPECT_FALSE(mask & (1ull << CAP_MKNOD)) << line;
      EXPECT_FALSE(mask & (1ull << CAP_CHOWN)) << line;
    }
  }
  if (::geteuid() == 0) {
    // Nothing else was taken: root keeps, e.g., CAP_DAC_OVERRIDE.
    std::string caps = read_file(t.path() / "caps");
    auto bnd = caps.substr(caps.find("CapBnd:") + 7);
    EXPECT_TRUE(std::stoull(bnd, nullptr, 16) & (1ull << CAP_DAC_OVERRIDE)) << caps;
  }
}

TEST(Fs, AtomicWriteAndRead) {
  TempDir t("/tmp", "kestrel-fs-");
  write_file_atomic(t.path() / "f", "abc");
  EXPECT_EQ(read_file(t.path() / "f"), "abc");
  EXPECT_FALSE(read_file_if_exists(t.path() / "g"));
  EXPECT_THROW(read_file(t.path() / "g"), Error);
}

TEST(Lock, ExclusiveLockIsSeenByOthers) {
  TempDir t("/tmp", "kestrel-lock-");
  auto path = t.path() / "l";
  EXPECT_FALSE(is_locked(path));
  LockFile a = LockFile::try_lock(path);
  ASSERT_TRUE(a.locked());
  EXPECT_TRUE(is_locked(path));
  EXPECT_FALSE(LockFile::try_lock(path).locked());
  a.unlock();
  EXPECT_TRUE(LockFile::try_lock(path).locked());
}

TEST(Lock, RemovedLockFileIsTakenAnewByItsWaiter) {
  TempDir t("/tmp", "kestrel-lock-");
  auto path = t.path() / "l";
  LockFile holder = LockFile::try_lock(path);
  ASSERT_TRUE(holder.locked());
  struct stat first;
  ASSERT_EQ(::stat(path.c_str(), &first), 0);
  // A waiter opens the file now and blocks on it.
  std::promise<ino_t> got;
  std::thread waiter([&] {
    LockFile l = LockFile::lock(path, Deadline::after(std::chrono::seconds(10)));
    struct stat st {};
    got.set_value(l.locked() && ::fstat(l.fd(), &st) == 0 ? st.st_ino : 0);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  holder.remove_locked(path);
  EXPECT_FALSE(fs::exists(path));
  holder.unlock();
  ino_t ino = got.get_future().get();
  waiter.join();
  // The waiter holds the file that the name now names, not the removed one.
  struct stat now;
  ASSERT_EQ(::stat(path.c_str(), &now), 0);
  EXPECT_EQ(ino, now.st_ino);
  EXPECT_NE(first.st_ino, 0u);
}

TEST(Strings, ShellQuote) {
  EXPECT_EQ(shell_quote("abc/d-e.f"), "abc/d-e.f");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote(""), "''");
}

}  // namespace
}  // namespace kestrel

// Children that take everything they start with them (SpawnOptions::contain:
// a PID and mount namespace of their own, as root) and children that outlive
// us without a zombie (SpawnOptions::detached).
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "util/fs.hpp"
#include "util/process.hpp"

namespace kestrel {
namespace {

using namespace std::chrono_literals;

// The pids of the processes whose command line holds `marker`.
int count_running(const std::string& marker) {
  int n = 0;
  DIR* proc = ::opendir("/proc");
  if (!proc) return -1;
  while (struct dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    auto cmdline = read_file_if_exists(fs::path("/proc") / e->d_name / "cmdline");
    if (!cmdline) continue;
    for (char& c : *cmdline)
      if (c == '\0') c = ' ';
    // A zombie has an empty command line: it counts as gone.
    if (cmdline->find(marker) != std::string::npos) ++n;
  }
  ::closedir(proc);
  return n;
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  for (auto end = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < end;) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

std::string marker_for(const char* what) {
  return "kestrel-test-" + std::string(what) + "-" + std::to_string(::getpid());
}

// A program that leaves a daemon in a session of its own and a process that
// ignores SIGTERM: what mmdebstrap and apt-get did when a build was stopped.
SpawnOptions stubborn_program(const std::string& marker) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c",
            "setsid sh -c 'sleep 600; : " + marker +
                "-daemon' & "
                "(trap '' TERM; sleep 600; : " +
                marker +
                "-stubborn) & "
                "wait; : " +
                marker};
  o.contain = true;
  o.contain_grace_s = 1;
  return o;
}

TEST(Contain, StoppingTheChildEndsAllItStarted) {
  if (::geteuid() != 0) GTEST_SKIP() << "a PID namespace needs root (others get a process group)";
  std::string marker = marker_for("stop");
  Child child = Child::spawn(stubborn_program(marker));
  ASSERT_TRUE(wait_until([&] { return count_running(marker) == 3; }, 10s)) << count_running(marker);
  auto started = std::chrono::steady_clock::now();
  child.kill_group(SIGTERM);
  auto status = child.wait(Deadline::after(10s));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(count_running(marker), 0);
  // The stubborn one was killed when the grace (1 s) was up, not later.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

TEST(Contain, AKilledOwnerTakesItAllWithIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "a PID namespace needs root (others get a process group)";
  std::string marker = marker_for("owner");
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {  // as a kestrel that gets SIGKILL
    SpawnOptions o = stubborn_program(marker);
    o.die_with_parent = true;
    o.death_signal = SIGTERM;
    Child child = Child::spawn(o);
    child.release();
    ::pause();
    ::_exit(0);
  }
  ASSERT_TRUE(wait_until([&] { return count_running(marker) == 3; }, 10s)) << count_running(marker);
  ::kill(owner, SIGKILL);
  ::waitpid(owner, nullptr, 0);
  EXPECT_TRUE(wait_until([&] { return count_running(marker) == 0; }, 10s)) << count_running(marker);
}

TEST(Contain, TheProgramsStatusComesThrough) {
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "exit 7"};
  o.contain = true;
  EXPECT_EQ(shell_status(*Child::spawn(o).wait(Deadline::after(10s))), 7);
  o.argv = {"/bin/sh", "-c", "kill -9 $$"};
  EXPECT_EQ(shell_status(*Child::spawn(o).wait(Deadline::after(10s))), 128 + SIGKILL);
  o.argv = {"/nonexistent/program"};
  EXPECT_THROW(Child::spawn(o), Error);
}

TEST(Contain, MountsStayInside) {
  if (::geteuid() != 0) GTEST_SKIP() << "a mount namespace needs root";
  TempDir dir("/tmp", "kestrel-contain-mount-");
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "mount -t tmpfs none \"$1\" && touch \"$1\"/inside", "sh", dir.path().string()};
  o.contain = true;
  EXPECT_EQ(shell_status(*Child::spawn(o).wait(Deadline::after(10s))), 0);
  EXPECT_FALSE(fs::exists(dir.path() / "inside"));  // on the tmpfs, gone with it
}

TEST(Detached, OutlivesUsWithoutAZombie) {
  std::string marker = marker_for("detached");
  TempDir dir("/tmp", "kestrel-detached-");
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "echo $PPID > \"$1\"; sleep 0.3; : " + marker, "sh", (dir.path() / "ppid").string()};
  o.detached = true;
  Child child = Child::spawn(o);
  EXPECT_FALSE(child.valid());
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir.path() / "ppid"); }, 5s));
  EXPECT_NE(read_file(dir.path() / "ppid"), std::to_string(::getpid()) + "\n");  // not our child
  EXPECT_TRUE(wait_until([&] { return count_running(marker) == 0; }, 5s));
}

}  // namespace
}  // namespace kestrel

// What a user meets on a kept VM: the state `kestrel exec` reproduces a run
// with, a clone's kernel command line, and the agent's console shell (run
// here on a pseudo-terminal standing in for the serial console).
#include "agent/console.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "deploy/deployment.hpp"
#include "util/deadline.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "vm/qemu.hpp"

namespace kestrel {
namespace {

using namespace std::chrono_literals;

TEST(DeploymentState, KeepsTheRunsWorkingDirectoryAndEnvironment) {
  deploy::State s;
  s.cwd = "/home/me/project";
  s.env = std::vector<std::string>{"A=1", "KESTREL_VM=x-1", "EMPTY="};
  auto back = deploy::State::from_json(s.to_json(), "f");
  EXPECT_EQ(back.cwd, s.cwd);
  EXPECT_EQ(back.env, s.env);
  // A deployment of an older kestrel has neither: exec keeps its old defaults.
  auto old = deploy::State::from_json(R"({"version": 1, "command": ["/bin/true"]})", "f");
  EXPECT_FALSE(old.cwd);
  EXPECT_FALSE(old.env);
  // Bytes that are not UTF-8 do not make the state unwritable.
  s.env->push_back("BIN=\xff\xfe");
  EXPECT_NO_THROW(deploy::State::from_json(s.to_json(), "f"));
}

TEST(KernelCmdline, TemplatesAndClonesCarryANeutralName) {
  vm::VmConfig c;
  c.name = "mytest-abc123";
  EXPECT_NE(vm::kernel_cmdline(c).find("kestrel.name=mytest-abc123"), std::string::npos);
  // A clone resumes its template's memory, /proc/cmdline included: the first
  // run's name there would name some other VM.
  c.memory_file = "/cache/templates/k/memory";
  std::string line = vm::kernel_cmdline(c);
  EXPECT_EQ(line.find("mytest"), std::string::npos) << line;
  EXPECT_NE(line.find("kestrel.name=kestrel-template"), std::string::npos) << line;
}

TEST(KernelCmdline, UserArgumentsComeLastSoTheyWin) {
  vm::VmConfig c;
  c.name = "t-abc123";
  std::string own = vm::kernel_cmdline(c);
  c.kernel_args = "quiet=0 loglevel=7 foo=bar";
  EXPECT_EQ(vm::kernel_cmdline(c), own + " quiet=0 loglevel=7 foo=bar");
  // A template's line has them too (its clones' /proc/cmdline is the template's).
  c.memory_file = "/cache/templates/k/memory";
  std::string line = vm::kernel_cmdline(c);
  EXPECT_TRUE(line.ends_with(" kestrel.name=kestrel-template quiet=0 loglevel=7 foo=bar")) << line;
}

TEST(KernelCmdline, PciNoacpiOnlyWhereTheKernelKeepsItsApic) {
  vm::VmConfig c;
  EXPECT_NE(vm::kernel_cmdline(c).find(" pci=noacpi "), std::string::npos);
  c.pci_noacpi = false;  // a kernel without CONFIG_X86_MPPARSE
  std::string line = vm::kernel_cmdline(c);
  EXPECT_EQ(line.find("pci="), std::string::npos) << line;
  EXPECT_NE(line.find("random.trust_cpu=on mitigations=off"), std::string::npos) << line;
}

TEST(KernelCmdline, TheWholeLineMustFitLinuxsLimit) {
  vm::VmConfig c;
  c.name = "t-abc123";
  size_t own = std::max(vm::kernel_cmdline(c).size(), [&] {
    vm::VmConfig t = c;
    t.memory_file = "m";
    return vm::kernel_cmdline(t).size();
  }());
  c.kernel_args = std::string(vm::kMaxKernelCmdline - own - 1, 'x');  // with its space: exactly 2047
  EXPECT_NO_THROW(vm::check_kernel_cmdline(c));
  c.kernel_args += "y";
  try {
    vm::check_kernel_cmdline(c);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              fmt::format("the guest kernel's command line would be 2048 bytes, more than the 2047 Linux takes on x86 "
                          "(COMMAND_LINE_SIZE 2048 with its NUL; it cuts off the rest): kestrel's own flags take {}, "
                          "kernel_args (--append) {}; shorten kernel_args by 1 byte",
                          own, c.kernel_args.size()));
  }
}

// A pseudo-terminal whose slave stands in for ttyS0. Like the agent's
// /dev/console, `keep` holds the slave open all along.
struct FakeConsole {
  UniqueFd master;
  std::string slave;
  UniqueFd keep;
  FakeConsole() {
    master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0) return;
    slave = ::ptsname(master.get());
    keep = UniqueFd(::open(slave.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
  }
  void type(const std::string& s) const { ASSERT_EQ(::write(master.get(), s.data(), s.size()), ssize_t(s.size())); }
  // What the console printed until it was quiet for `quiet` (or 10 s passed),
  // serving `console` meanwhile as the agent's loop would.
  std::string read_until_quiet(agent::Console& console, std::chrono::milliseconds quiet = 700ms) const {
    std::string out;
    Deadline end = Deadline::after(10s);
    Deadline rest = Deadline::after(quiet);
    while (!end.expired() && !rest.expired()) {
      int in = console.input_fd();
      pollfd p[2] = {{master.get(), POLLIN, 0}, {in, POLLIN, 0}};
      if (::poll(p, in >= 0 ? 2 : 1, 50) <= 0) {
        console.tick();
        continue;
      }
      if (in >= 0 && (p[1].revents & POLLIN)) console.on_input();
      if (p[0].revents & POLLIN) {
        char buf[4096];
        ssize_t n = ::read(master.get(), buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
        rest = Deadline::after(quiet);
      }
    }
    return out;
  }
};

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class ConsoleShell : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fake.keep) GTEST_SKIP() << "no pseudo-terminal";
    ::signal(SIGCHLD, SIG_DFL);
  }
  void TearDown() override {
    if (console.pid() > 0) {
      ::kill(-console.pid(), SIGKILL);
      ::waitpid(console.pid(), nullptr, 0);
    }
  }
  FakeConsole fake;
  agent::Console console{agent::Console::Options{fake.slave, "/bin/sh"}};
};

TEST_F(ConsoleShell, TheNewlineThatWakesItGetsOnePromptAndTheWindowIs24x80) {
  fake.type("\n");  // what `kestrel serial` sends on attaching
  std::string out = fake.read_until_quiet(console);
  ASSERT_GT(console.pid(), 0) << "no shell started: " << out;
  EXPECT_EQ(count(out, ":# "), 1u) << out;
  fake.type("stty size\n");
  out = fake.read_until_quiet(console);
  EXPECT_NE(out.find("24 80"), std::string::npos) << out;
}

TEST_F(ConsoleShell, ACommandThatWakesItRuns) {
  fake.type("echo a$((6*7))b\n");
  std::string out = fake.read_until_quiet(console);
  EXPECT_NE(out.find("a42b"), std::string::npos) << out;
}

}  // namespace
}  // namespace kestrel

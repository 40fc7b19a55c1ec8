// SERVICE (agent/services.hpp) in the agent's own root: real shell commands
// and python3 listeners, run from the test process, which is their parent as
// the agent would be. Every service here ends by itself within seconds.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "agent/services.hpp"
#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace kestrel::agent {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A TCP port nobody listens on (at the moment of asking).
uint16_t free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail_errno("cannot find a free port");
  return ntohs(addr.sin_port);
}

class Services : public ::testing::Test {
 protected:
  std::string dir() const { return tmp_.path().string(); }
  std::string logs() const { return dir() + "/logs"; }
  std::string log_of(const std::string& name) const { return read_file(logs() + "/" + name + ".log"); }

  // run_service's error message, "" on success.
  std::string run(const std::string& name, const std::string& command, const std::string& ready,
                  uint32_t timeout_ms = 10000) {
    return test::error_message([&] { run_service({name, command, ready, timeout_ms}, "", logs()); });
  }

  TempDir tmp_{"/tmp", "kestrel-services-"};
};

TEST_F(Services, ReadyWhenItsCommandExitsZero) {
  EXPECT_EQ(run("starter", "echo started; touch " + dir() + "/done", ""), "");
  EXPECT_TRUE(fs::exists(dir() + "/done"));
  EXPECT_EQ(log_of("starter"), "started\n");
  // The log is appended to, not replaced.
  EXPECT_EQ(run("starter", "echo again", ""), "");
  EXPECT_EQ(log_of("starter"), "started\nagain\n");
}

TEST_F(Services, RunsWithExactlyItsEnvironmentInTheRoot) {
  EXPECT_EQ(run("env", "pwd; env | sort; cat", ""), "");
  EXPECT_EQ(log_of("env"),
            "/\nHOME=/root\nLANG=C.UTF-8\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
            "PWD=/\nTERM=dumb\n");  // cat read /dev/null: nothing
}

TEST_F(Services, TcpReadinessWaitsForTheListener) {
  uint16_t port = free_port();
  std::string listener = fmt::format(
      "python3 -c 'import socket, time\n"
      "time.sleep(0.3)\n"
      "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
      "s.bind((\"127.0.0.1\", {})); s.listen(8); print(\"listening\", flush=True); time.sleep(2)'",
      port);
  auto start = Clock::now();
  EXPECT_EQ(run("tcp", listener, fmt::format("tcp:{}", port)), "");
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));
  EXPECT_EQ(log_of("tcp"), "listening\n");
}

TEST_F(Services, UnixReadinessConnectsToTheSocket) {
  std::string sock = dir() + "/service.sock";
  std::string listener = fmt::format(
      "exec python3 -c 'import socket, time\n"
      "time.sleep(0.2)\n"
      "s = socket.socket(socket.AF_UNIX); s.bind(\"{}\"); s.listen(8); time.sleep(2)'",
      sock);
  EXPECT_EQ(run("unix", listener, "unix:" + sock), "");
  EXPECT_TRUE(fs::exists(sock));
}

TEST_F(Services, CommandReadinessOfAForkingDaemon) {
  std::string flag = dir() + "/ready";
  // Starts a background part and returns at once, as daemons' start commands do.
  std::string command = "(sleep 0.3; touch " + flag + "; sleep 1) >/dev/null 2>&1 & echo forked";
  EXPECT_EQ(run("daemon", command, "command:test -e " + flag), "");
  EXPECT_TRUE(fs::exists(flag));
}

TEST_F(Services, ExitBeforeReadyIsAnErrorWithTheLogsLastLines) {
  std::string command = "for i in $(seq 1 15); do echo line $i; done; echo oops >&2; exit 1";
  std::string message = run("postgresql", command, "tcp:1");
  std::string log = logs() + "/postgresql.log";
  EXPECT_EQ(message, "service postgresql exited with status 1 before it was ready (tcp:1); last lines of " + log +
                         ":\nline 7\nline 8\nline 9\nline 10\nline 11\nline 12\nline 13\nline 14\nline 15\noops");
  EXPECT_EQ(run("quiet", "exit 3", ""), "service quiet exited with status 3; " + logs() + "/quiet.log is empty");
  EXPECT_EQ(run("killed", "echo bye; kill -9 $$", "command:false"),
            "service killed was killed by signal 9 (Killed) before it was ready (command:false); last lines of " +
                logs() + "/killed.log:\nbye");
}

TEST_F(Services, TimeoutIsAnErrorWithTheLogsLastLines) {
  uint16_t port = free_port();
  auto start = Clock::now();
  std::string message = run("slow", "echo waiting; sleep 2", fmt::format("tcp:{}", port), 300);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_EQ(message,
            fmt::format("service slow was not ready (tcp:{}) within 0.3 s; last lines of {}/slow.log:\nwaiting", port,
                        logs()));
  EXPECT_EQ(
      run("stuck", "sleep 2", "", 200),
      "service stuck was not ready (its command had not finished) within 0.2 s; " + logs() + "/stuck.log is empty");
  EXPECT_EQ(run("never", "sleep 2", "command:exit 4", 200),
            "service never was not ready (command:exit 4) within 0.2 s; the last check exited with status 4; " +
                logs() + "/never.log is empty");
}

TEST_F(Services, ReadinessCheckThatOverrunsIsKilled) {
  auto start = Clock::now();
  std::string message = run("hang", "sleep 2", "command:sleep 30", 300);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_NE(message.find("within 0.3 s; the last check was still running at the deadline"), std::string::npos)
      << message;
}

TEST_F(Services, ReapsOnlyItsOwnProcesses) {
  pid_t other = ::fork();
  ASSERT_GE(other, 0);
  if (other == 0) ::_exit(7);
  EXPECT_EQ(run("own", "sleep 0.2", ""), "");
  int status = 0;
  ASSERT_EQ(::waitpid(other, &status, WNOHANG), other) << "another child was reaped by the service's wait";
  EXPECT_EQ(WEXITSTATUS(status), 7);
}

TEST_F(Services, InvalidRequestsStartNothing) {
  EXPECT_NE(run("Bad Name", "touch " + dir() + "/x", "").find("invalid service name"), std::string::npos);
  EXPECT_NE(run("x", "touch " + dir() + "/x", "tcp:0").find("invalid readiness"), std::string::npos);
  EXPECT_NE(run("x", "touch " + dir() + "/x", "", 0).find("timeout of 0"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir() + "/x"));
  EXPECT_FALSE(fs::exists(logs()));
}

TEST(LastLines, KeepsTheEnd) {
  EXPECT_EQ(last_lines("", 10), "");
  EXPECT_EQ(last_lines("a\n", 10), "a");
  EXPECT_EQ(last_lines("a\nb\nc\n", 2), "b\nc");
  EXPECT_EQ(last_lines("a\nb\nc", 2), "b\nc");
  EXPECT_EQ(last_lines("a\nb\nc", 3), "a\nb\nc");
  EXPECT_EQ(last_lines("\n\n", 1), "");
}

}  // namespace
}  // namespace kestrel::agent

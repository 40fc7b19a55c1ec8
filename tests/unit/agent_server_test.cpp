// The agent's server on a socketpair, in a forked process (it blocks
// SIGCHLD and reaps its programs), driven frame by frame as a host would.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "agent/server.hpp"
#include "proto/exec_frames.hpp"
#include "proto/frame.hpp"
#include "util/error.hpp"
#include "util/io.hpp"

namespace kestrel::agent {
namespace {

using proto::Frame;
using proto::Type;
using namespace std::chrono_literals;

class ServerProcess {
 public:
  ServerProcess() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) fail_errno("socketpair");
    pid_ = ::fork();
    if (pid_ < 0) fail_errno("fork");
    if (pid_ == 0) {
      ::close(sv[0]);
      // The guest's stack limit (the kernel's default for PID 1), so that
      // execve's limit is the guest's: a quarter of it, 2 MiB.
      rlimit stack{};
      ::getrlimit(RLIMIT_STACK, &stack);
      stack.rlim_cur = std::min<rlim_t>(8u << 20, stack.rlim_max);
      ::setrlimit(RLIMIT_STACK, &stack);
      try {
        ServerOptions options;
        options.reap_all = false;
        AgentServer server(options);
        server.add_socket(UniqueFd(sv[1]), "test");
        server.run();
      } catch (...) {
      }
      ::_exit(0);
    }
    ::close(sv[1]);
    fd_ = UniqueFd(sv[0]);
  }
  ~ServerProcess() {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }

  void send(Type type, uint32_t stream, std::string_view payload) {
    write_all(fd_.get(), proto::encode_frame(type, stream, payload), "the agent's socket");
  }
  void send_exec(uint32_t stream, const proto::Exec& exec) {
    for (const auto& f : proto::encode_exec(exec)) send(f.type, stream, f.payload);
  }

  // The next frame on `stream`, others skipped.
  Frame next(uint32_t stream, Deadline deadline = Deadline::after(30s)) {
    for (;;) {
      while (auto f = decoder_.next()) {
        if (f->stream == stream) return std::move(*f);
      }
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, deadline.poll_timeout_ms()) == 0) fail("no frame on stream {} in time", stream);
      char buf[65536];
      ssize_t n = read_some(fd_.get(), buf);
      if (n <= 0) fail("the agent's socket closed");
      decoder_.feed(std::string_view(buf, static_cast<size_t>(n)));
    }
  }

  // STDOUT of `stream` until its EXIT; fails on ERROR.
  std::string output_until_exit(uint32_t stream) {
    std::string out;
    for (;;) {
      Frame f = next(stream);
      if (f.type == Type::kStdout) out += f.payload;
      if (f.type == Type::kError) fail("ERROR: {}", proto::decode_text(f.payload));
      if (f.type == Type::kExit) {
        EXPECT_EQ(proto::ExitStatus::decode(f.payload).shell_status(), 0);
        return out;
      }
    }
  }

 private:
  pid_t pid_ = -1;
  UniqueFd fd_;
  proto::FrameDecoder decoder_;
};

proto::Exec shell(const std::string& script) {
  proto::Exec e;
  e.argv = {"/bin/sh", "-c", script, "x"};
  e.env = {"PATH=/usr/bin:/bin"};
  e.cwd = "/";
  return e;
}

TEST(AgentServer, SeventyThousandArgumentsReachTheProgram) {
  ServerProcess server;
  proto::Exec e = shell("echo $#");
  for (int i = 1; i <= 70000; ++i) e.argv.push_back(std::to_string(i));
  ASSERT_GT(proto::encode_exec(e).size(), 1u);
  server.send_exec(1, e);
  EXPECT_EQ(server.next(1).type, Type::kStarted);
  EXPECT_EQ(server.output_until_exit(1), "70000\n");
}

TEST(AgentServer, SeventyThousandVariablesOverOneMebibyteReachTheProgram) {
  ServerProcess server;
  proto::Exec e = shell("env | grep -c ^KV; env | grep ^KV | wc -c");
  size_t bytes = 0;
  for (int i = 0; i < 70000; ++i) {
    e.env.push_back(fmt::format("KV{}=value-{:05}", i, i));
    bytes += e.env.back().size() + 1;  // env prints a newline per entry
  }
  ASSERT_GT(bytes, 1u << 20);
  server.send_exec(1, e);
  EXPECT_EQ(server.next(1).type, Type::kStarted);
  EXPECT_EQ(server.output_until_exit(1), fmt::format("70000\n{}\n", bytes));
}

TEST(AgentServer, CommandLineBeyondTheGuestsLimitNamesE2BIG) {
  ServerProcess server;
  proto::Exec e = shell("echo $#");
  e.argv.resize(300000, "x");  // 2.4 MB of pointers alone: over 2 MiB
  server.send_exec(1, e);
  Frame f = server.next(1);
  ASSERT_EQ(f.type, Type::kError);
  std::string message = proto::decode_text(f.payload);
  EXPECT_NE(message.find("E2BIG"), std::string::npos) << message;
  EXPECT_NE(message.find("300000 arguments"), std::string::npos) << message;
  EXPECT_NE(message.find("stack limit"), std::string::npos) << message;
  // The connection goes on.
  server.send(Type::kPing, 2, "p");
  EXPECT_EQ(server.next(2).type, Type::kPong);
}

TEST(AgentServer, FrameBetweenExecAndItsLastPartIsAProtocolError) {
  ServerProcess server;
  proto::Exec e = shell("echo never");
  e.flags = proto::kExecMoreFollows;
  server.send(Type::kExec, 1, e.encode());
  server.send(Type::kPing, 2, "p");
  Frame f = server.next(0, Deadline::after(30s));
  while (f.type == Type::kHello) f = server.next(0);
  ASSERT_EQ(f.type, Type::kError);
  EXPECT_NE(proto::decode_text(f.payload).find("awaits its last EXEC_MORE"), std::string::npos);
  // The unfinished EXEC was dropped with the connection's state: a late
  // EXEC_MORE for it is out of order, and a new EXEC runs.
  server.send(Type::kExecMore, 1, proto::ExecMore{true, {"y"}, {}}.encode());
  f = server.next(0);
  ASSERT_EQ(f.type, Type::kError);
  EXPECT_NE(proto::decode_text(f.payload).find("without an unfinished EXEC"), std::string::npos);
  server.send_exec(3, shell("echo ok"));
  EXPECT_EQ(server.next(3).type, Type::kStarted);
  EXPECT_EQ(server.output_until_exit(3), "ok\n");
}

TEST(AgentServer, ExecOverTheBoundsIsRefusedOnItsStream) {
  ServerProcess server;
  proto::Exec e = shell("echo never");
  e.flags = proto::kExecMoreFollows;
  server.send(Type::kExec, 1, e.encode());
  std::vector<std::string> big(15, std::string(64 * 1024, 'b'));
  for (int i = 0; i < 18; ++i) server.send(Type::kExecMore, 1, proto::ExecMore{i == 17, big, {}}.encode());
  Frame f = server.next(1);
  ASSERT_EQ(f.type, Type::kError);
  EXPECT_NE(proto::decode_text(f.payload).find("bounds"), std::string::npos);
  server.send(Type::kPing, 2, "p");
  EXPECT_EQ(server.next(2).type, Type::kPong);
}

}  // namespace
}  // namespace kestrel::agent

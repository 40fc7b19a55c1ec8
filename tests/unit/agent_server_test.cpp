// The agent's server on a socketpair, in a forked process (it blocks
// SIGCHLD and reaps its programs), driven frame by frame as a host would;
// and the SETUP mount plans (agent/setup.hpp), which need no root to check.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>

#include "agent/network.hpp"
#include "agent/server.hpp"
#include "agent/setup.hpp"
#include "proto/exec_frames.hpp"
#include "proto/frame.hpp"
#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"

namespace kestrel::agent {
namespace {

using proto::Frame;
using proto::Type;
using namespace std::chrono_literals;

class ServerProcess {
 public:
  explicit ServerProcess(std::function<void(ServerOptions&)> configure = {}) {
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
        if (configure) configure(options);
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

// ---- SETUP ----------------------------------------------------------------

// A fake SETUP: hostname "fail" fails midway, "invalid" is refused up front;
// the guest root stays the agent's own, so EXEC still works after it.
std::string fake_setup(const proto::SetupRequest& request, const std::string&) {
  if (request.hostname == "fail") throw Error("mount failed");
  if (request.hostname == "invalid") throw InvalidSetup("invalid hostname");
  return "";
}

ServerProcess setup_server() {
  return ServerProcess([](ServerOptions& o) { o.setup = fake_setup; });
}

// OK, or the ERROR's message.
std::string setup(ServerProcess& server, uint32_t stream, const std::string& hostname,
                  std::vector<proto::Mount> mounts = {}) {
  server.send(Type::kSetup, stream, proto::SetupRequest{hostname, 0, "", std::move(mounts)}.encode());
  Frame f = server.next(stream);
  if (f.type == Type::kOk) return "OK";
  EXPECT_EQ(f.type, Type::kError);
  return proto::decode_text(f.payload);
}

const proto::Mount kOverlay{"root", "", proto::MountKind::kRootOverlay};
const proto::Mount kDisk{"/dev/vda", "ext4", proto::MountKind::kDiskRoot};
const proto::Mount kShare{"bay", "/tmp/bay", proto::MountKind::kReadWrite};

std::string greeting_info(ServerProcess& server) {
  server.send(Type::kHello, 0, proto::Hello{proto::kVersion, 77, {}, ""}.encode());
  for (;;) {
    proto::Hello h = proto::Hello::decode(server.next(0).payload);
    if (h.nonce != 77) continue;
    EXPECT_EQ(h.capabilities, (std::vector<std::string>{"exec", "pty", "setup", "services", "disk-root", "network"}));
    return h.info;
  }
}

TEST(AgentServer, SetupMayComeAgainButARootOnce) {
  ServerProcess server = setup_server();
  EXPECT_NE(greeting_info(server).find("setup=0\nroot=0\n"), std::string::npos);
  EXPECT_EQ(setup(server, 1, "vm", {kShare}), "OK");  // shares, no root
  EXPECT_EQ(setup(server, 2, "", {kShare}), "OK");    // again
  EXPECT_EQ(setup(server, 3, "", {kDisk, kShare}), "OK");
  EXPECT_NE(greeting_info(server).find("setup=1\nroot=1\n"), std::string::npos);
  std::string refused = setup(server, 4, "", {kOverlay});
  EXPECT_NE(refused.find("a root is mounted already"), std::string::npos) << refused;
  EXPECT_NE(setup(server, 5, "", {kDisk}).find("a root is mounted already"), std::string::npos);
  // Refused up front: nothing changed, so SETUP goes on.
  EXPECT_EQ(setup(server, 6, "", {kShare}), "OK");
  EXPECT_EQ(setup(server, 7, "invalid"), "cannot set up the VM: invalid hostname");
  EXPECT_EQ(setup(server, 8, "vm2"), "OK");
  server.send(Type::kSetup, 9, "junk");
  EXPECT_EQ(server.next(9).type, Type::kError);
  EXPECT_EQ(setup(server, 10, "vm3"), "OK");
}

TEST(AgentServer, SetupThatFailedMidwayRefusesEveryLaterOne) {
  ServerProcess server = setup_server();
  EXPECT_EQ(setup(server, 1, "fail"), "cannot set up the VM: mount failed");
  std::string refused = setup(server, 2, "vm");
  EXPECT_NE(refused.find("an earlier SETUP failed"), std::string::npos) << refused;
  EXPECT_NE(setup(server, 3, "vm", {kOverlay}).find("an earlier SETUP failed"), std::string::npos);
  // Programs still run.
  server.send_exec(4, shell("echo still"));
  EXPECT_EQ(server.next(4).type, Type::kStarted);
  EXPECT_EQ(server.output_until_exit(4), "still\n");
}

TEST(AgentServer, AgentWithoutSetupRefusesIt) {
  ServerProcess server;
  EXPECT_NE(setup(server, 1, "vm").find("not supported"), std::string::npos);
}

// ---- SERVICE --------------------------------------------------------------

TEST(AgentServer, ServiceRunsInTheAgentsOwnRootAndOutlivesItsAnswer) {
  TempDir dir("/tmp", "kestrel-server-services-");
  std::string logs = (dir.path() / "logs").string(), sock = (dir.path() / "s.sock").string();
  ServerProcess server([&](ServerOptions& o) { o.service_logs = logs; });
  std::string listener = fmt::format(
      "exec python3 -c 'import socket, time\n"
      "time.sleep(0.2)\n"
      "s = socket.socket(socket.AF_UNIX); s.bind(\"{}\"); s.listen(8); print(\"up\", flush=True); time.sleep(3)'",
      sock);
  server.send(Type::kService, 1, proto::ServiceRequest{"sock", listener, "unix:" + sock, 10000}.encode());
  Frame f = server.next(1);
  ASSERT_EQ(f.type, Type::kOk) << (f.type == Type::kError ? proto::decode_text(f.payload) : "");
  // Running still, and the server serves on.
  server.send_exec(2, shell("test -S " + sock + " && cat " + logs + "/sock.log"));
  EXPECT_EQ(server.next(2).type, Type::kStarted);
  EXPECT_EQ(server.output_until_exit(2), "up\n");
}

TEST(AgentServer, FailingOrMalformedServiceIsAnErrorOnItsStream) {
  TempDir dir("/tmp", "kestrel-server-services-");
  std::string logs = (dir.path() / "logs").string();
  ServerProcess server([&](ServerOptions& o) { o.service_logs = logs; });
  server.send(Type::kService, 1, proto::ServiceRequest{"db", "echo no config; exit 1", "tcp:1", 5000}.encode());
  Frame f = server.next(1);
  ASSERT_EQ(f.type, Type::kError);
  EXPECT_EQ(
      proto::decode_text(f.payload),
      "service db exited with status 1 before it was ready (tcp:1); last lines of " + logs + "/db.log:\nno config");
  server.send(Type::kService, 2, "junk");
  f = server.next(2);
  ASSERT_EQ(f.type, Type::kError);
  EXPECT_NE(proto::decode_text(f.payload).find("cannot start a service: malformed message"), std::string::npos);
  server.send(Type::kService, 3, proto::ServiceRequest{"../x", "true", "", 5000}.encode());
  EXPECT_NE(proto::decode_text(server.next(3).payload).find("invalid service name '../x'"), std::string::npos);
  server.send(Type::kPing, 4, "p");
  EXPECT_EQ(server.next(4).type, Type::kPong);
}

// ---- NETWORK --------------------------------------------------------------

// OK, or the ERROR's message.
std::string network(ServerProcess& server, uint32_t stream, std::string_view payload) {
  server.send(Type::kNetwork, stream, payload);
  Frame f = server.next(stream);
  if (f.type == Type::kOk) return "OK";
  EXPECT_EQ(f.type, Type::kError);
  return proto::decode_text(f.payload);
}

TEST(AgentServer, NetworkIsAnsweredOnItsStream) {
  ServerProcess server([](ServerOptions& o) {
    o.network = [](const proto::NetworkRequest& request, const std::string& root) {
      if (request.forward) throw InvalidNetwork(fmt::format("refused in root '{}'", root));
    };
  });
  proto::NetworkRequest request;
  EXPECT_EQ(network(server, 1, request.encode()), "OK");
  request.forward = true;
  EXPECT_EQ(network(server, 2, request.encode()), "refused in root ''");
  std::string malformed = network(server, 3, "junk");
  EXPECT_NE(malformed.find("cannot configure the network: malformed message"), std::string::npos) << malformed;
  // The connection goes on.
  EXPECT_EQ(network(server, 4, proto::NetworkRequest{}.encode()), "OK");
  // On stream 0: a protocol error.
  server.send(Type::kNetwork, 0, proto::NetworkRequest{}.encode());
  Frame f = server.next(0);
  ASSERT_EQ(f.type, Type::kError);
  EXPECT_EQ(proto::decode_text(f.payload), "protocol error: NETWORK on stream 0");
}

TEST(AgentServer, AgentWithoutNetworkRefusesIt) {
  ServerProcess server;
  EXPECT_EQ(network(server, 1, proto::NetworkRequest{}.encode()),
            "cannot configure the network: NETWORK is not supported by this agent");
}

TEST(PlanMounts, DiskRootThenItsPseudoFileSystemsThenShares) {
  SetupPaths paths{"/sr", "/m", "/lib/modules"};
  MountPlan plan = plan_mounts({kShare, kDisk}, paths);
  EXPECT_EQ(plan.root, "/sr");
  EXPECT_EQ(plan.device, "/dev/vda");
  ASSERT_EQ(plan.steps.size(), 6u);
  const MountStep& disk = plan.steps[0];
  EXPECT_EQ(disk.source, "/dev/vda");
  EXPECT_EQ(disk.target, "/sr");
  EXPECT_EQ(disk.fstype, "ext4");
  EXPECT_EQ(disk.flags, 0ul);  // read-write
  EXPECT_EQ(disk.what, "/dev/vda");
  EXPECT_TRUE(disk.disk);
  EXPECT_FALSE(disk.in_guest_root);
  std::vector<std::string> targets;
  for (const auto& step : plan.steps) targets.push_back(step.target);
  EXPECT_EQ(targets, (std::vector<std::string>{"/sr", "/sr/proc", "/sr/sys", "/sr/dev", "/sr/run", "/tmp/bay"}));
  EXPECT_EQ(plan.steps[4].fstype, "tmpfs");
  EXPECT_TRUE(plan.steps[5].in_guest_root);
  EXPECT_FALSE(plan.steps[5].disk);

  // The same pseudo file systems as a root overlay gets.
  MountPlan overlay = plan_mounts({kOverlay}, paths);
  EXPECT_EQ(overlay.device, "");
  ASSERT_EQ(overlay.steps.size(), 7u);
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_EQ(overlay.steps[i + 2].target, plan.steps[i].target);
    EXPECT_EQ(overlay.steps[i + 2].flags, plan.steps[i].flags);
  }
  // Shares alone: no root, nothing to wait for.
  MountPlan shares = plan_mounts({kShare}, paths);
  EXPECT_EQ(shares.root, "");
  EXPECT_EQ(shares.device, "");
  EXPECT_EQ(shares.steps.size(), 1u);
}

TEST(PlanMounts, InvalidDiskRootsAndCombinations) {
  auto problem = [](std::vector<proto::Mount> mounts) { return test::error_message([&] { plan_mounts(mounts); }); };
  EXPECT_NE(problem({kDisk, kOverlay}).find("more than one root mount"), std::string::npos);
  EXPECT_NE(problem({kOverlay, kDisk}).find("more than one root mount"), std::string::npos);
  EXPECT_NE(problem({kDisk, {"/dev/vdb", "ext4", proto::MountKind::kDiskRoot}}).find("more than one root mount"),
            std::string::npos);
  for (const std::string& device : std::vector<std::string>{"vda", "/dev/", "/dev/../etc/x", "/dev/vd a", "/devvda",
                                                            "/tmp/vda", "/dev/vda,x", std::string("/dev/vd\0a", 9)}) {
    EXPECT_NE(problem({{device, "ext4", proto::MountKind::kDiskRoot}}).find("invalid disk root device"),
              std::string::npos)
        << device;
  }
  for (const std::string& fstype : std::vector<std::string>{"", "EXT4", "ext4,ro", "ext 4", std::string(33, 'x')}) {
    EXPECT_NE(problem({{"/dev/vda", fstype, proto::MountKind::kDiskRoot}}).find("invalid file system type"),
              std::string::npos)
        << fstype;
  }
  EXPECT_EQ(problem({{"/dev/disk/by-id/virtio-x", "xfs", proto::MountKind::kDiskRoot}}), "");
}

}  // namespace
}  // namespace kestrel::agent

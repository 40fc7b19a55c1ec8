// kestrel's C++ API from a GoogleTest harness: a topology built in code, its
// nodes' commands and links; a single program run in a VM.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <kestrel/kestrel.hpp>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;

// A TCP echo server for the "server" node: it answers each connection's
// first line with "HOSTNAME: LINE". The guests' root is the host's, so the
// host's python3 runs there.
constexpr const char* kEchoServer = R"(
import socket
server = socket.create_server(("", 7000))
while True:
    conn, _ = server.accept()
    with conn, conn.makefile("rw") as f:
        f.write(socket.gethostname() + ": " + f.readline())
)";

// A round trip to server:7000 by name with bash's /dev/tcp, tried $1 times
// (the server may still be starting, a link just up); prints the answer.
constexpr const char* kRoundTrip = R"(
for ((i = 0; i < $1; i++)); do
  if { echo ping >&3 && read -r -t 5 reply <&3; } 2>/dev/null 3<>/dev/tcp/server/7000; then
    echo "$reply"
    exit 0
  fi
  sleep 0.2
done
exit 1
)";

// Two nodes on the host's root, one link, addresses assigned by kestrel.
kestrel::TopologyDefinition two_nodes() {
  kestrel::TopologyDefinition definition;
  definition.name = "cpp-api";
  for (const char* name : {"server", "client"}) {
    kestrel::Node node;
    node.name = name;
    definition.nodes.push_back(node);
  }
  kestrel::Link link;
  link.a = "server";
  link.b = "client";
  definition.links.push_back(link);
  return definition;
}

// A round trip from the client: at most `attempts` tries within `seconds`.
kestrel::ExecResult round_trip(kestrel::Topology& topology, int attempts, int seconds) {
  return topology.exec("client", {"timeout", std::to_string(seconds), "/bin/bash", "-c", kRoundTrip, "round-trip",
                                  std::to_string(attempts)});
}

TEST(Topology, TwoNodesTalk) {
  kestrel::Topology topology = kestrel::Topology::up(two_nodes());
  EXPECT_TRUE(std::filesystem::is_directory(topology.dir())) << topology.dir();
  std::vector<std::string> nodes = topology.nodes();
  std::sort(nodes.begin(), nodes.end());
  EXPECT_EQ(nodes, (std::vector<std::string>{"client", "server"}));

  // Each node is its own VM, named after the node.
  kestrel::ExecResult hostname = topology.exec("client", "hostname");
  EXPECT_EQ(hostname.status, 0) << hostname.err;
  EXPECT_EQ(hostname.out, "client\n");
  EXPECT_EQ(topology.exec("server", {"/bin/hostname"}).out, "server\n");  // an argv, no shell
  EXPECT_EQ(topology.exec("client", "exit 3").status, 3);
  EXPECT_EQ(topology.exec("client", "sleep 60", 2s).status, 124);  // timed out, killed

  // The client resolves the server's name to its address on their link.
  std::string server = topology.address("server", "client");
  kestrel::ExecResult hosts = topology.exec("client", "getent hosts server");
  ASSERT_EQ(hosts.status, 0) << hosts.err;
  EXPECT_EQ(hosts.out.substr(0, hosts.out.find_first_of(" \t")), server) << hosts.out;

  // A server in its own session outlives the exec that starts it. The exec
  // waits until it listens (port 7000 is 1B58 in /proc/net/tcp): when an
  // exec ends, what is left of its process group ends with it, and setsid's
  // child is in that group until it has made its session.
  kestrel::ExecResult started = topology.exec(
      "server", {"/bin/sh", "-c",
                 "setsid -f /usr/bin/python3 -c \"$1\" </dev/null >/tmp/echo.log 2>&1\n"
                 "for i in $(seq 300); do grep -q ':1B58 ' /proc/net/tcp && exit 0; sleep 0.1; done; exit 1",
                 "sh", kEchoServer});
  ASSERT_EQ(started.status, 0) << started.err << topology.exec("server", "cat /tmp/echo.log").out;
  kestrel::ExecResult answer = round_trip(topology, 100, 30);
  EXPECT_EQ(answer.status, 0) << answer.err << topology.exec("server", "cat /tmp/echo.log").out;
  EXPECT_EQ(answer.out, "server: ping\n");

  // No carrier, no connection; back up, it works again.
  topology.link("client", "server", false);
  EXPECT_NE(round_trip(topology, 1, 5).status, 0);
  topology.link("client", "server", true);
  answer = round_trip(topology, 100, 30);
  EXPECT_EQ(answer.status, 0) << answer.err;
  EXPECT_EQ(answer.out, "server: ping\n");

  // A failed test leaves its VMs running for a look inside, as `kestrel run`
  // does; `kestrel down -f DIR` removes them.
  if (HasFailure()) {
    topology.keep();
    std::fprintf(stderr, "kept: kestrel exec client 'CMD' -f %s\n", topology.dir().c_str());
    return;
  }
  // down() takes it all away at once (the destructor would too).
  std::filesystem::path dir = topology.dir();
  topology.down();
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_THROW(topology.exec("client", "true"), std::runtime_error);
  topology.down();  // harmless
}

TEST(Run, StatusAndOutput) {
  kestrel::ExecResult result = kestrel::run({"/bin/sh", "-c", "echo hi; exit 4"});
  EXPECT_EQ(result.status, 4);
  EXPECT_EQ(result.out, "hi\n");
  EXPECT_EQ(result.err, "");
}

}  // namespace

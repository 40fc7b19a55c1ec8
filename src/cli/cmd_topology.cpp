// kestrel up FILE | kestrel down -f DIR | kestrel link A B down|up -f DIR
// (docs/topologies.md)
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "config/config.hpp"
#include "deploy/reaper.hpp"
#include "deploy/teardown.hpp"
#include "host/run_options.hpp"
#include "topology/cluster.hpp"
#include "util/error.hpp"
#include "util/signals.hpp"

namespace kestrel::cli {

namespace {

const char* kUpHelp = R"(Bring up a topology: several VMs linked point to point (docs/topologies.md).

  kestrel up FILE [--name STEM]

FILE is a TOML file of [[node]]s (name, image, memory, cpus, share, forward,
uplink) and [[link]]s (nodes = ["a", "b"], optional addresses). Every node
starts at once, warm from a template where there is one, and is ready (its
image's services running, addresses, routes and /etc/hosts set: node names
resolve in every node) when `up` returns. No root is needed and no host
interface is touched: links are QEMU datagram sockets in the deployment dir.

stdout gets the deployment dir alone (dir=$(kestrel up FILE)); stderr says
  kestrel: topology NAME up in S s, deployment dir DIR
followed by each node's console and command lines. Then:
  kestrel exec NODE 'CMD' -f DIR        run a command on a node
  kestrel serial NODE -f DIR            a node's console
  kestrel link NODE_A NODE_B down -f DIR   cut a link (up restores it)
  kestrel down -f DIR                   tear all nodes down
`kestrel ls` lists the topology as one deployment with its nodes. It stays up
until `kestrel down`, or until `kestrel gc` after its time to live
(KESTREL_KEEP_TTL, default 2h).

A node that fails to start is reported with its console log; nothing is left
running then (the directory stays for the logs until `kestrel gc`).
Memory, CPUs, kernel and accelerator default to the configuration's
(`kestrel config`). Exit status: 0 when all nodes are up, 125 when kestrel
failed, 128+N after signal N (everything torn down), 2 for a bad command line.
)";

}  // namespace

int cmd_up(const Args& args) {
  std::string file, name;
  CLI::App app(kUpHelp, "kestrel up");
  app.add_option("file", file, "the topology file")->required();
  app.add_option("--name", name, "deployment name stem (default: the topology's name); a random suffix is added");
  if (!parse(app, args)) return 0;
  topology::Spec spec = topology::load_spec(file);
  config::Config config = config::Config::load();
  SignalFd signals({SIGINT, SIGTERM, SIGHUP, SIGWINCH});
  topology::UpOptions o;
  o.vm = host::boot_options(config);
  o.vm.signal_fd = signals.fd();
  o.vm.notice = [](const std::string& line) { say(line); };
  o.say = o.vm.notice;
  o.name = name;
  auto started = std::chrono::steady_clock::now();
  try {
    topology::Cluster cluster = topology::Cluster::up(spec, o);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    cluster.keep();
    std::vector<std::string> nodes;
    for (const auto& n : spec.nodes) nodes.push_back(n.name);
    say(fmt::format("topology {} up in {:.2f} s, deployment dir {}", cluster.dir().filename().string(), seconds,
                    cluster.dir().string()));
    for (const auto& line : topology::describe_commands(self_command(), cluster.dir(), nodes)) say(line);
    std::printf("%s\n", cluster.dir().c_str());
    std::fflush(stdout);
  } catch (const Interrupted& e) {
    say(fmt::format("interrupted by signal {}: the topology was torn down", e.signo()));
    return 128 + e.signo();
  }
  return 0;
}

int cmd_down(const Args& args) {
  std::vector<std::string> dirs;
  CLI::App app(
      "Tear topologies down: kill every node's VM (in parallel) and remove the deployment\n"
      "directory, sockets and logs included (the same as `kestrel destroy -f DIR`).\n"
      "Prints one line per deployment: destroyed DIR (STATE).\n\n"
      "  kestrel down -f DIR\n",
      "kestrel down");
  app.add_option("-f,--dir", dirs, "a deployment directory (repeatable)")->required();
  if (!parse(app, args)) return 0;
  std::vector<std::filesystem::path> targets;
  for (const auto& dir : dirs) {
    auto real = deploy::resolve_deployment_dir(dir);
    deploy::check_ours(real);
    targets.push_back(real);
  }
  deploy::destroy_deployments(targets, Deadline::after(std::chrono::seconds(10)),
                              [](const std::filesystem::path& dir, const char* liveness) {
                                std::printf("destroyed %s (%s)\n", dir.c_str(), liveness);
                                std::fflush(stdout);
                              });
  return 0;
}

int cmd_link(const Args& args) {
  std::vector<std::string> words;
  std::string dir;
  CLI::App app(
      "Take the link between two nodes of a topology down or up, for failure tests:\n"
      "both ends lose (or regain) carrier at once (QMP set_link), packets between them\n"
      "are dropped meanwhile; addresses and routes stay.\n\n"
      "  kestrel link NODE_A NODE_B down -f DIR\n"
      "  kestrel link NODE_A NODE_B up -f DIR\n",
      "kestrel link");
  app.add_option("words", words, "NODE_A NODE_B down|up")->required()->expected(3);
  app.add_option("-f,--dir", dir, "the topology's deployment directory")->required();
  if (!parse(app, args)) return 0;
  if (words[2] != "down" && words[2] != "up")
    throw CLI::ValidationError("link", "the third word must be down or up, not '" + words[2] + "'");
  topology::set_link(dir, words[0], words[1], words[2] == "up");
  return 0;
}

}  // namespace kestrel::cli

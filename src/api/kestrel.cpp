// The C++ API (include/kestrel/kestrel.hpp, docs/api.md) over the library's
// own calls: topology::Cluster (as `kestrel up`/`run --topology`) and the
// agent client (as `kestrel exec`).
#include "kestrel/kestrel.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "config/config.hpp"
#include "config/keys.hpp"
#include "deploy/teardown.hpp"
#include "host/agent_client.hpp"
#include "host/environment.hpp"
#include "host/program.hpp"
#include "host/run_options.hpp"
#include "host/shares.hpp"
#include "host/write_through.hpp"
#include "image/build.hpp"
#include "topology/cluster.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"

extern char** environ;

namespace kestrel {

namespace {

namespace fs = std::filesystem;

void say(const std::string& line) {
  std::fprintf(stderr, "kestrel: %s\n", line.c_str());
  std::fflush(stderr);
}

topology::UpOptions up_options() {
  topology::UpOptions o;
  o.vm = host::boot_options(config::Config::load());
  o.vm.notice = say;
  o.say = say;
  return o;
}

topology::Spec to_spec(const TopologyDefinition& d) {
  topology::Spec spec;
  spec.name = d.name;
  for (const auto& n : d.nodes) {
    topology::NodeSpec node;
    node.name = n.name;
    node.image = n.image;
    if (!n.image.empty() && image::names_recipe(n.image)) node.image = fs::absolute(n.image).lexically_normal();
    node.memory_mib = n.memory_mib;
    node.cpus = n.cpus;
    for (const auto& share : n.shares) node.shares.push_back(topology::normalize_share(share, fs::current_path()));
    node.forward = n.forward;
    node.uplink = n.uplink;
    spec.nodes.push_back(std::move(node));
  }
  for (const auto& l : d.links) {
    topology::LinkSpec link;
    link.a = l.a;
    link.b = l.b;
    if (l.address_a.empty() != l.address_b.empty()) fail("link {}-{}: give both addresses or neither", l.a, l.b);
    if (!l.address_a.empty()) {
      link.addr_a = topology::parse_address(l.address_a);
      link.addr_b = topology::parse_address(l.address_b);
    }
    spec.links.push_back(std::move(link));
  }
  topology::check_spec(spec);
  return spec;
}

// A file only in memory that collects a program's output.
class Capture {
 public:
  Capture() : fd_(::memfd_create("kestrel-output", MFD_CLOEXEC)) {
    if (!fd_) fail_errno("cannot create a memory file for output");
  }
  int fd() const { return fd_.get(); }
  std::string text() const {
    std::string out;
    char buf[65536];
    for (off_t at = 0;;) {
      ssize_t n = ::pread(fd_.get(), buf, sizeof buf, at);
      if (n < 0) fail_errno("cannot read captured output");
      if (n == 0) return out;
      out.append(buf, static_cast<size_t>(n));
      at += n;
    }
  }

 private:
  UniqueFd fd_;
};

ExecResult exec_on(host::AgentClient& agent, int vm_pidfd, const std::string& node, const vm::VmPaths& paths,
                   proto::Exec exec, std::chrono::milliseconds timeout) {
  Capture out, err;
  host::ExecIo io;
  io.stdout_fd = out.fd();
  io.stderr_fd = err.fd();
  io.vm_pidfd = vm_pidfd;
  if (timeout.count() > 0) io.timeout = Deadline::after(timeout);
  host::ExecOutcome outcome = agent.exec(exec, io);
  ExecResult result;
  using Kind = host::ExecOutcome::Kind;
  switch (outcome.kind) {
    case Kind::kExited:
      result.status = outcome.status.shell_status();
      break;
    case Kind::kStartFailed:
      result.status = outcome.message.find("No such file") != std::string::npos ? 127 : 126;
      result.err = outcome.message + "\n";
      break;
    case Kind::kTimedOut:
      result.status = 124;
      break;
    case Kind::kInterrupted:
      result.status = 128 + outcome.signo;
      break;
    case Kind::kVmGone:
      fail("{}", host::describe_vm_failure(node, paths, "stopped while the command ran"));
    case Kind::kAgentLost:
      fail("{}", host::describe_vm_failure(node, paths, "lost its agent: " + outcome.message));
  }
  result.out = out.text() + result.out;
  result.err = err.text() + result.err;
  return result;
}

void check_timeout(const char* call, std::chrono::milliseconds timeout) {
  if (timeout.count() < 0)
    fail("{}: the timeout is negative ({} ms); give 0 for none or a positive duration", call, timeout.count());
}

}  // namespace

struct Topology::Impl {
  explicit Impl(topology::Cluster c) : cluster(std::move(c)), dir(cluster.dir()) {
    for (const auto& n : cluster.spec().nodes) nodes.push_back(n.name);
    idle.resize(nodes.size());
  }
  // Throws once the topology is down (`what` names the call).
  void check_up(const char* what) const {
    if (down) fail("{}: the topology in {} is down", what, dir.string());
  }
  // A connection to node i's agent: an idle one, else a new one (ports 1 to
  // 7: up to 7 calls per node at once, more wait for a port).
  host::AgentClient take_connection(size_t i) {
    {
      std::lock_guard lock(pool_mutex);
      if (!idle[i].empty()) {
        host::AgentClient agent = std::move(idle[i].back());
        idle[i].pop_back();
        return agent;
      }
    }
    return host::AgentClient::connect(cluster.paths(i), 1, Deadline::after(std::chrono::seconds(30)),
                                      cluster.machine(i).qemu().pidfd());
  }
  void give_back(size_t i, host::AgentClient agent) {
    std::lock_guard lock(pool_mutex);
    idle[i].push_back(std::move(agent));
  }
  topology::Cluster cluster;
  fs::path dir;  // kept after down()
  std::vector<std::string> nodes;
  bool down = false;
  // Connections stay open until the topology goes down: the agent ends what
  // a command left in its process group when the command's connection
  // closes, so a server a command starts (setsid -f, whose child is in that
  // group until it has its session) lives as long as the topology.
  // (Declared after `cluster`: they close before the VMs go.)
  std::mutex pool_mutex;
  std::vector<std::vector<host::AgentClient>> idle;  // per node
};

Topology::Topology(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

// A moved-from Topology has no Impl: every call but down() and the
// destructor says so instead of crashing.
Topology::Impl& Topology::impl(const char* call) const {
  if (!impl_) fail("Topology::{}: this Topology was moved from; use the one it was moved to", call);
  return *impl_;
}
Topology::Topology(Topology&&) noexcept = default;
Topology& Topology::operator=(Topology&&) noexcept = default;
Topology::~Topology() = default;  // the cluster tears down unless kept

Topology Topology::up(const fs::path& file) {
  topology::Spec spec = topology::load_spec(file);
  return Topology(std::make_unique<Impl>(topology::Cluster::up(spec, up_options())));
}

Topology Topology::up(const TopologyDefinition& definition) {
  topology::Spec spec = to_spec(definition);
  return Topology(std::make_unique<Impl>(topology::Cluster::up(spec, up_options())));
}

const fs::path& Topology::dir() const { return impl("dir").dir; }

std::vector<std::string> Topology::nodes() const { return impl("nodes").nodes; }

ExecResult Topology::exec(const std::string& node, const std::string& command, std::chrono::milliseconds timeout) {
  return exec(node, std::vector<std::string>{"/bin/sh", "-c", command}, timeout);
}

ExecResult Topology::exec(const std::string& node, const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout) {
  Impl& self = impl("exec");
  if (argv.empty()) fail("exec on {}: the command is empty", node);
  check_timeout("exec", timeout);
  self.check_up("exec");
  size_t i = self.cluster.index(node);
  proto::Exec exec;
  exec.argv = argv;
  exec.env = host::default_exec_environment();
  exec.env.push_back("KESTREL_VM=" + node);
  exec.cwd = "/";
  // A connection no other call is using, as each `kestrel exec` has: calls
  // from several threads run at once. One whose VM or agent failed is not
  // used again (exec_on throws, and it closes).
  host::AgentClient agent = self.take_connection(i);
  ExecResult result =
      exec_on(agent, self.cluster.machine(i).qemu().pidfd(), node, self.cluster.paths(i), exec, timeout);
  self.give_back(i, std::move(agent));
  return result;
}

void Topology::link(const std::string& a, const std::string& b, bool up) {
  impl("link").check_up("link");
  topology::set_link(dir(), a, b, up);
}

std::string Topology::address(const std::string& node, const std::string& peer) const {
  Impl& self = impl("address");
  self.check_up("address");
  size_t i = self.cluster.index(node);
  const auto& nics = self.cluster.network()[i].nics;
  for (const auto& nic : nics)
    if (peer.empty() || nic.peer == peer) return nic.address.ip_str();
  if (peer.empty()) fail("node {} has no network interface", node);
  fail("node {} has no link with {}", node, peer);
}

void Topology::keep() {
  Impl& self = impl("keep");
  self.check_up("keep");
  self.cluster.keep();
}

void Topology::down() {
  if (!impl_ || impl_->down) return;
  impl_->down = true;
  impl_->idle.clear();  // the connections close before the VMs go
  topology::Cluster gone = std::move(impl_->cluster);
}

ExecResult run(const std::vector<std::string>& argv, const VmOptions& options) {
  if (argv.empty()) fail("run: the command is empty");
  check_timeout("run", options.timeout);
  // On an image, a program named without a directory, or in the system
  // directories, is the image's: the guest finds it (docs/images.md). Any
  // other is checked on the host first, as `kestrel run` checks it: one
  // that cannot run comes back as 127 or 126, and no VM boots.
  bool image_program = !options.image.empty() && host::is_image_program(argv[0]);
  fs::path program;
  try {
    program = image_program ? fs::path(argv[0]) : host::resolve_program(argv[0]);
  } catch (const host::ProgramError& e) {
    return {e.status(), "", fmt::format("kestrel: error: {}\n", e.what())};
  }
  topology::Spec spec;
  spec.name = program.filename().empty() ? "run" : program.filename().string();
  topology::NodeSpec node;
  node.name = "vm";
  node.image = options.image;
  if (!node.image.empty() && image::names_recipe(node.image)) node.image = fs::absolute(node.image).lexically_normal();
  node.memory_mib = options.memory_mib;
  node.cpus = options.cpus;
  spec.nodes.push_back(node);
  topology::UpOptions o = up_options();
  o.name = spec.name;
  o.extra_node = "vm";
  for (const auto& share : options.shares)
    o.extra_shares.push_back(config::parse_share(topology::normalize_share(share, fs::current_path())));
  if (!image_program) o.extra_program = program;
  // The working directory's tree is written through on an image too, as
  // `kestrel run --image` does: the program starts there.
  host::WritePlan writes =
      host::plan_write_through({{"auto"}, "kestrel::run", fs::current_path(), program, host::user_home()});
  for (const auto& t : writes.trees) o.extra_trees.push_back(t.path);
  topology::check_spec(spec);
  topology::Cluster cluster = topology::Cluster::up(spec, o);
  proto::Exec exec;
  exec.argv = argv;
  exec.argv[0] = program.string();
  exec.env = host::guest_environment(environ);
  exec.env.push_back("KESTREL_VM=" + cluster.dir().filename().string());
  exec.cwd = fs::current_path().string();
  host::Machine& m = cluster.machine(0);
  return exec_on(m.agent(), m.qemu().pidfd(), "vm", cluster.paths(0), exec, options.timeout);
}

}  // namespace kestrel

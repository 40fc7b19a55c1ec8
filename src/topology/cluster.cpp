#include "topology/cluster.hpp"

#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "deploy/naming.hpp"
#include "host/environment.hpp"
#include "host/vm_exit.hpp"
#include "image/build.hpp"
#include "image/store.hpp"
#include "topology/network_request.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/lockfile.hpp"
#include "util/signals.hpp"
#include "util/socket.hpp"
#include "util/strings.hpp"
#include "util/trace.hpp"
#include "vm/qmp.hpp"

namespace kestrel::topology {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

struct Cluster::State {
  Spec spec;
  std::vector<NodeNetwork> network;
  deploy::Deployment deployment;
  std::optional<deploy::RunGuard> guard;
  std::vector<std::optional<host::Machine>> machines;  // declared after the guard: dropped (killed) first
  bool kept = false;

  State(Spec s, std::vector<NodeNetwork> n, deploy::Deployment d)
      : spec(std::move(s)), network(std::move(n)), deployment(std::move(d)) {}
};

namespace {

fs::path links_file(const fs::path& dir) { return dir / "topology.json"; }

// The NICs of node `i` as QEMU gets them: a dgram pair per link (this end's
// socket in the node's directory, the peer's in the peer's), a user-mode
// backend for the uplink.
std::vector<vm::Nic> node_nics(const Spec& spec, const std::vector<NodeNetwork>& net, size_t i,
                               const deploy::Deployment& dep) {
  std::vector<vm::Nic> nics;
  for (size_t k = 0; k < net[i].nics.size(); ++k) {
    const Nic& planned = net[i].nics[k];
    vm::Nic nic;
    nic.mac = planned.mac;
    if (planned.link < 0) {
      nic.kind = vm::Nic::Kind::kUser;
    } else {
      // The peer's NIC on the same link.
      size_t peer = 0;
      while (spec.nodes[peer].name != planned.peer) ++peer;
      size_t peer_nic = 0;
      while (net[peer].nics[peer_nic].link != planned.link) ++peer_nic;
      nic.local = dep.vm_paths(spec.nodes[i].name).dir / ("nic" + std::to_string(k) + ".sock");
      nic.remote = dep.vm_paths(planned.peer).dir / ("nic" + std::to_string(peer_nic) + ".sock");
      check_socket_path(nic.local);
    }
    nics.push_back(std::move(nic));
  }
  return nics;
}

void write_links(const Spec& spec, const std::vector<NodeNetwork>& net, const fs::path& dir) {
  json j = {{"version", 1}, {"name", spec.name}, {"file", spec.file.string()}};
  j["nodes"] = json::array();
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    json node = {{"name", spec.nodes[i].name}, {"image", spec.nodes[i].image}, {"nics", json::array()}};
    for (const auto& nic : net[i].nics)
      node["nics"].push_back(
          {{"link", nic.link}, {"peer", nic.peer}, {"mac", nic.mac}, {"address", nic.address.str()}});
    j["nodes"].push_back(std::move(node));
  }
  write_file_atomic(links_file(dir), dump_json(j, 2) + "\n", 0600);
}

// Why node startup stopped everything: the first failure wins; a signal
// beats a failure it caused.
struct Failures {
  std::mutex mutex;
  std::exception_ptr first;
  std::optional<int> signo;
  std::atomic<bool> aborting{false};
  std::vector<int> pids;  // QEMUs launched so far, killed on abort

  void abort_all(std::exception_ptr e, std::optional<int> sig) {
    std::lock_guard lock(mutex);
    if (sig && !signo) signo = sig;
    if (!first) first = e;
    aborting = true;
    for (int pid : pids) ::kill(pid, SIGKILL);  // not reaped yet: the pid is still theirs
  }
};

}  // namespace

std::vector<LinkRecord> read_links(const fs::path& dir) {
  auto text = read_file_if_exists(links_file(dir));
  if (!text) fail("{} is not a topology's deployment (no {})", dir.string(), links_file(dir).filename().string());
  json j = parse_json(*text);
  if (!j.is_object() || !j["nodes"].is_array()) fail("{} is damaged", links_file(dir).string());
  // link index -> its two ends
  std::map<int, std::vector<LinkEnd>> ends;
  for (const auto& node : j["nodes"]) {
    size_t k = 0;
    for (const auto& nic : node.value("nics", json::array())) {
      int link = nic.value("link", -1);
      if (link >= 0) ends[link].push_back({node.value("name", ""), k});
      ++k;
    }
  }
  std::vector<LinkRecord> links;
  for (auto& [index, e] : ends)
    if (e.size() == 2) links.push_back({e[0], e[1]});
  return links;
}

Cluster::Cluster(std::unique_ptr<State> state) : s_(std::move(state)) {}
Cluster::Cluster(Cluster&&) noexcept = default;
Cluster& Cluster::operator=(Cluster&&) noexcept = default;
Cluster::~Cluster() {
  if (!s_) return;
  if (s_->kept)
    for (auto& m : s_->machines)
      if (m) m->qemu().release();
  s_->machines.clear();  // kills the VMs (unless released), before the guard removes the directory
}

const fs::path& Cluster::dir() const { return s_->deployment.dir(); }
const Spec& Cluster::spec() const { return s_->spec; }
const std::vector<NodeNetwork>& Cluster::network() const { return s_->network; }
host::Machine& Cluster::machine(size_t node) { return *s_->machines.at(node); }
vm::VmPaths Cluster::paths(size_t node) const { return s_->deployment.vm_paths(s_->spec.nodes.at(node).name); }
deploy::Deployment& Cluster::deployment() { return s_->deployment; }

size_t Cluster::index(const std::string& node) const {
  std::string names;
  for (size_t i = 0; i < s_->spec.nodes.size(); ++i) {
    if (s_->spec.nodes[i].name == node) return i;
    names += (names.empty() ? "" : ", ") + s_->spec.nodes[i].name;
  }
  fail("no node named {} in {} (it has: {})", node, dir().string(), names);
}

void Cluster::keep() {
  s_->guard->keep(0);
  s_->deployment.state().exit_status.reset();
  s_->deployment.save();
  s_->kept = true;
}

void Cluster::fail_and_keep_logs(int exit_status) {
  s_->machines.clear();
  s_->guard->keep_failed(exit_status);
}

Cluster Cluster::up(const Spec& spec, const UpOptions& o) {
  std::vector<NodeNetwork> net = plan_network(spec);
  auto say = [&](const std::string& line) {
    if (o.say) o.say(line);
  };

  // Images first, one by one (a recipe is built once however many nodes use it).
  std::map<std::string, image::ImageInfo> images;
  for (const auto& node : spec.nodes) {
    if (node.image.empty() || images.count(node.image)) continue;
    image::BuildOptions build;
    build.vm = o.vm;
    build.say = o.say;
    images.emplace(node.image, image::resolve_image(node.image, build));
  }

  std::string stem = !o.name.empty() ? o.name : !spec.name.empty() ? spec.name : "topology";
  deploy::Deployment dep = deploy::Deployment::create(deploy::make_vm_name(stem));
  dep.state().kind = "topology";
  dep.state().keep = "always";
  for (const auto& node : spec.nodes)
    dep.state().vms.push_back({node.name, 0, "", "", node.image.empty() ? "" : images.at(node.image).id});
  dep.save();
  auto state = std::make_unique<State>(spec, net, std::move(dep));
  State& s = *state;
  s.guard.emplace(s.deployment, [&](const std::string& e) { say("warning: " + e); });
  write_links(spec, net, s.deployment.dir());
  s.machines.resize(spec.nodes.size());

  // Everything that can be checked before a QEMU starts.
  std::vector<host::BootOptions> boots;
  std::vector<host::SharePlan> shares;
  std::vector<LockFile> image_holds;
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    const NodeSpec& node = spec.nodes[i];
    host::BootOptions b = o.vm;
    b.name = node.name;
    b.paths = s.deployment.vm_paths(node.name);
    for (const auto& socket : {b.paths.qmp(), b.paths.serial(), b.paths.agent(proto::kPortCount - 1)})
      check_socket_path(socket);
    if (node.memory_mib) b.mem_mib = node.memory_mib;
    if (node.cpus) b.cpus = node.cpus;
    std::vector<config::Share> node_shares;
    for (const auto& text : node.shares) node_shares.push_back(config::parse_share(text));
    bool extra = node.name == o.extra_node;
    if (extra) node_shares.insert(node_shares.end(), o.extra_shares.begin(), o.extra_shares.end());
    shares.push_back(host::plan_shares(node_shares, extra ? o.extra_program : fs::path(),
                                       extra ? o.extra_trees : std::vector<fs::path>{}, node.image.empty()));
    b.shares = shares.back().devices;
    if (!node.image.empty()) {
      const image::ImageInfo& info = images.at(node.image);
      b.image = image::disk_image(info);
      LockFile hold = LockFile::lock_existing(info.files.dir, Deadline::after(5s), LockFile::Mode::kShared);
      if (!hold.locked()) fail("image {} ({}) was removed meanwhile", info.name, info.id);
      image_holds.push_back(std::move(hold));
    }
    b.nics = node_nics(spec, net, i, s.deployment);
    b.user_network = false;  // a node's uplink is `uplink = true`, planned with its links
    boots.push_back(std::move(b));
  }

  Failures failures;
  std::mutex state_mutex;
  std::vector<std::thread> threads;
  say(fmt::format("starting {} node(s): {}", spec.nodes.size(), [&] {
    std::string names;
    for (const auto& n : spec.nodes) names += (names.empty() ? "" : ", ") + n.name;
    return names;
  }()));
  for (size_t i = 0; i < spec.nodes.size(); ++i) {
    threads.emplace_back([&, i] {
      host::BootOptions& b = boots[i];
      const std::string& name = spec.nodes[i].name;
      b.on_launch = [&, i](int pid, vm::Accel accel, bool clone) {
        std::lock_guard lock(state_mutex);
        s.deployment.note_launch(i, pid, vm::accel_name(accel), clone);
        std::lock_guard flock(failures.mutex);
        failures.pids.push_back(pid);
        if (failures.aborting) ::kill(pid, SIGKILL);
      };
      try {
        host::Machine m = host::Machine::boot(b);
        int pidfd = m.qemu().pidfd();
        proto::SetupRequest setup = host::setup_request(name, shares[i].mounts);
        auto step = [&](const char* what, auto&& call) {
          try {
            call();
          } catch (const host::VmGone&) {
            throw Error(host::describe_vm_failure(
                name, b.paths,
                fmt::format("stopped during {}: {}", what,
                            host::explain_vm_exit(b.paths, m.qemu().wait(Deadline::after(1s))))));
          } catch (const Interrupted&) {
            throw;
          } catch (const Error& e) {
            throw Error(host::describe_vm_failure(name, b.paths, fmt::format("could not {}: {}", what, e.what())));
          }
        };
        step("be set up", [&] { m.agent().setup(setup, Deadline::after(30s), pidfd); });
        step("configure its network",
             [&] { m.agent().network(network_request(net[i], spec.nodes[i]), Deadline::after(30s), pidfd); });
        host::note_on_console(b.paths, fmt::format("node {} of the topology is up", name));
        s.machines[i].emplace(std::move(m));
      } catch (const Interrupted& e) {
        failures.abort_all(std::current_exception(), e.signo());
      } catch (...) {
        failures.abort_all(std::current_exception(), std::nullopt);
      }
    });
  }
  for (auto& t : threads) t.join();
  image_holds.clear();
  trace("topology up");
  if (failures.signo) {
    s.machines.clear();
    std::rethrow_exception(failures.first);  // an Interrupted: the guard removes it all
  }
  if (failures.first) {
    Cluster failed(std::move(state));
    failed.fail_and_keep_logs(125);
    std::rethrow_exception(failures.first);
  }
  return Cluster(std::move(state));
}

void set_link(const fs::path& dir, const std::string& a, const std::string& b, bool up) {
  deploy::Deployment dep = deploy::Deployment::open(dir);
  std::vector<LinkRecord> links = read_links(dep.dir());
  std::string names;
  for (const auto& l : links) {
    if (!((l.a.node == a && l.b.node == b) || (l.a.node == b && l.b.node == a))) {
      names += (names.empty() ? "" : ", ") + l.a.node + "-" + l.b.node;
      continue;
    }
    for (const LinkEnd& end : {l.a, l.b}) {
      vm::VmPaths paths = dep.vm_paths(end.node);
      int pid = 0;
      for (const auto& vm : dep.state().vms)
        if (vm.name == end.node) pid = vm.pid;
      if (!deploy::is_vm_process(pid, paths.dir))
        fail("node {} in {} is not running (its QEMU process is gone); console log: {}", end.node, dir.string(),
             paths.console_log().string());
      UniqueFd pidfd = open_pidfd(pid);
      Deadline deadline = Deadline::after(10s);
      vm::Qmp qmp = vm::Qmp::connect(paths.qmp(), deadline, pidfd.get());
      qmp.execute("set_link", {{"name", vm::nic_id(end.nic)}, {"up", up}}, deadline);
    }
    return;
  }
  fail("no link between {} and {} in {} (its links: {})", a, b, dir.string(), names.empty() ? "none" : names);
}

std::vector<std::string> describe_commands(const std::string& self, const fs::path& dir,
                                           const std::vector<std::string>& nodes) {
  std::string d = shell_quote(dir.string());
  std::vector<std::string> lines;
  for (const auto& node : nodes) {
    lines.push_back(fmt::format("  {}:", node));
    lines.push_back(fmt::format("    console:  {} serial {} -f {}", self, node, d));
    lines.push_back(fmt::format("    command:  {} exec {} 'CMD' -f {}", self, node, d));
  }
  lines.push_back(fmt::format("  links:    {} link NODE_A NODE_B down|up -f {}", self, d));
  lines.push_back(fmt::format("  down:     {} down -f {}", self, d));
  return lines;
}

}  // namespace kestrel::topology

// A topology's VMs up and running (docs/topologies.md): one deployment
// holding a VM per node, launched in parallel (warm where a template
// exists), each set up (hostname, shares) and networked (NETWORK:
// addresses, routes, names) before up() returns. `kestrel up`, `kestrel run
// --topology` and the C++ API's kestrel::Topology are built on this.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "deploy/deployment.hpp"
#include "deploy/teardown.hpp"
#include "host/machine.hpp"
#include "host/shares.hpp"
#include "topology/spec.hpp"

namespace kestrel::topology {

struct UpOptions {
  // Every node's defaults: memory, CPUs, kernel, accelerator, warm starts,
  // debug, notice, signal_fd (host/run_options.hpp's boot_options).
  host::BootOptions vm;
  std::string name;                             // the deployment's name stem; "": the spec's name, else "topology"
  std::function<void(const std::string&)> say;  // progress and notices; may be empty
  // Shares a node gets besides its own (`run --topology`: the test's trees
  // and program directory on the node it runs on).
  std::string extra_node;
  std::vector<config::Share> extra_shares;
  std::vector<std::filesystem::path> extra_trees;
  std::filesystem::path extra_program;
};

// What the deployment keeps of the topology beside deployment.json, for the
// commands that come later (link, ls): DIR/topology.json.
struct LinkEnd {
  std::string node;
  size_t nic = 0;  // the node's NIC index (QEMU device nic<N>)
};
struct LinkRecord {
  LinkEnd a, b;
};
std::vector<LinkRecord> read_links(const std::filesystem::path& dir);

class Cluster {
 public:
  // Brings every node up; throws Error naming the node that failed (its
  // console log named). A failure kills every node's VM and keeps the
  // directory (status failed) for the logs; a signal (Interrupted) removes
  // it. Progress goes to options.say.
  static Cluster up(const Spec& spec, const UpOptions& options);

  Cluster(Cluster&&) noexcept;
  Cluster& operator=(Cluster&&) noexcept;
  ~Cluster();  // tears everything down unless keep() was called

  const std::filesystem::path& dir() const;
  const Spec& spec() const;
  const std::vector<NodeNetwork>& network() const;
  size_t index(const std::string& node) const;  // throws naming the nodes there are
  host::Machine& machine(size_t node);
  vm::VmPaths paths(size_t node) const;
  deploy::Deployment& deployment();

  // Leaves the VMs running when this object goes (status kept; `kestrel
  // down -f DIR` or gc removes them later).
  void keep();
  // Marks the deployment failed (directory kept for its logs) and kills its VMs.
  void fail_and_keep_logs(int exit_status);

 private:
  struct State;
  explicit Cluster(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

// Sets the link between nodes `a` and `b` of the deployment in `dir` up or
// down at both ends (QMP set_link). Throws naming the links there are.
void set_link(const std::filesystem::path& dir, const std::string& a, const std::string& b, bool up);

// The lines `kestrel up` prints after a topology came up: per node, how to
// reach it, and how to take it all down.
std::vector<std::string> describe_commands(const std::string& self, const std::filesystem::path& dir,
                                           const std::vector<std::string>& nodes);

}  // namespace kestrel::topology

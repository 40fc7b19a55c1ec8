// kestrel's C++ API (docs/api.md): run programs in throwaway VMs and bring
// up topologies of linked VMs from a test harness. It is the library the
// `kestrel` command itself is built on (kestrel up/down/link/run
// --topology). Installed with kestrel; in CMake:
//
//   find_package(Kestrel REQUIRED)
//   target_link_libraries(my_tests PRIVATE Kestrel::kestrel)
//
// Settings not given here (memory, CPUs, kernel, accelerator, ...) come from
// kestrel's configuration as for `kestrel run`: kestrel.toml in the working
// directory or a parent, the user's config file and KESTREL_* variables.
// Errors are thrown as std::runtime_error with kestrel's message (what the
// command line prints after "kestrel: error:").
#pragma once

#include <chrono>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#define KESTREL_API __attribute__((visibility("default")))

namespace kestrel {

// What a program did: its exit status as a shell reports it (128+N after
// signal N), and its output.
struct ExecResult {
  int status = 0;
  std::string out;
  std::string err;
};

// Options of a single VM (kestrel run's): 0 or empty means the configuration's.
struct VmOptions {
  std::string image;  // a recipe (path) or a built image's name/id; "": the host's root
  unsigned memory_mib = 0;
  unsigned cpus = 0;
  std::vector<std::string> shares;       // "PATH[:ro|:rw]"
  std::chrono::milliseconds timeout{0};  // 0: none
};

// Runs argv in a fresh VM (argv[0] a path, or a name found in PATH) and
// returns its status and output; the VM is gone afterwards.
KESTREL_API ExecResult run(const std::vector<std::string>& argv, const VmOptions& options = {});

// A node of a topology built in code (docs/topologies.md has the file form).
struct Node {
  std::string name;
  std::string image;  // "": the host's root
  unsigned memory_mib = 0;
  unsigned cpus = 0;
  std::vector<std::string> shares;
  bool forward = false;  // routes between its links
  bool uplink = false;   // a user-mode NIC to the outside world
};

// A point-to-point link; addresses "10.9.0.1/24" or "" for assigned ones.
struct Link {
  std::string a, b;
  std::string address_a, address_b;
};

struct TopologyDefinition {
  std::string name;  // names the deployment (a random suffix is added)
  std::vector<Node> nodes;
  std::vector<Link> links;
};

// A running topology: every node's VM up, agents and services ready. The
// destructor tears it all down (kestrel down), unless keep() was called.
class KESTREL_API Topology {
 public:
  // Brings up the topology in a file, or one built in code: all nodes in
  // parallel, warm where a template exists. Throws when a node fails (its
  // console log named); nothing is left running then.
  static Topology up(const std::filesystem::path& file);
  static Topology up(const TopologyDefinition& definition);

  Topology(Topology&&) noexcept;
  Topology& operator=(Topology&&) noexcept;
  ~Topology();

  // The deployment directory: `kestrel exec NODE 'CMD' -f DIR` and the other
  // commands reach the nodes through it.
  const std::filesystem::path& dir() const;
  std::vector<std::string> nodes() const;

  // Runs `/bin/sh -c command` (or argv) on a node as root, in /, with a
  // clean environment; output captured. A timeout kills it (status 124).
  ExecResult exec(const std::string& node, const std::string& command,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  ExecResult exec(const std::string& node, const std::vector<std::string>& argv,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  // exec(node, {"ls", "/"}): a braced list is an argv, never a command line.
  ExecResult exec(const std::string& node, std::initializer_list<std::string> argv,
                  std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
    return exec(node, std::vector<std::string>(argv), timeout);
  }

  // Takes the link between two nodes down (both ends lose carrier) or up.
  void link(const std::string& a, const std::string& b, bool up);

  // The node's address on its link with `peer` ("10.42.1.2"), or its first.
  std::string address(const std::string& node, const std::string& peer = "") const;

  // Leaves the topology running after this object is gone.
  void keep();
  // Tears it down now (the destructor does this otherwise). Idempotent.
  void down();

 private:
  struct Impl;
  explicit Topology(std::unique_ptr<Impl> impl);
  // The Impl, or an error naming `call` for a moved-from Topology.
  Impl& impl(const char* call) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kestrel

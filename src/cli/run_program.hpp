// What `kestrel run` shares between its two halves: one VM (cmd_run.cpp) and
// a node of a topology (cmd_run_topology.cpp): the run's options, the program
// (found and checked on the host, run in a booted VM, a copy kept with a
// kept VM).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/keys.hpp"
#include "host/environment.hpp"
#include "host/machine.hpp"
#include "host/program.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/signals.hpp"

namespace kestrel::topology {
struct Spec;
struct NodeSpec;
}  // namespace kestrel::topology

namespace kestrel::cli {

// Filled from the configuration (config/keys.cpp: command line > KESTREL_*
// environment > kestrel.toml > user file > defaults) and run's own options.
struct RunOptions {
  host::BootOptions vm;  // memory, CPUs, kernel, accelerator, warm (host/run_options.hpp)
  std::string name;
  std::string keep = "on-failure";
  bool quiet = false;
  bool debug = false;
  double timeout_s = 0;
  int slots = 0;  // 0: automatic
  bool list_on_host = true;
  host::EnvPolicy env;
  std::vector<config::Share> shares;
  std::vector<std::string> write_through;  // "auto" and paths; empty: none
  std::string write_through_origin;
  bool verbose = false;
  std::string image;           // a recipe or a built image; "": the host's root
  std::string topology, node;  // --topology FILE --node NODE (docs/topologies.md)
  std::vector<std::string> command;
};

using host::ProgramError;
using host::resolve_program;

// A copy (never a link: the host may rebuild the file in place) of the
// program as it ran, for debugging a kept VM after the host rebuilt it.
// Returns its path, or nothing (with a warning) if it cannot be made.
std::optional<fs::path> keep_program_copy(const fs::path& dir, const fs::path& program);

void say_interrupted(int signo, const std::string& name);

// How the program's run in the guest ended, its messages printed.
struct ProgramResult {
  enum class How { kFinished, kInterrupted, kVmGone, kAgentLost };
  How how = How::kFinished;
  int status = 0;  // the run's exit status
};

// Runs the program on `machine` with the run's environment and working
// directory, streaming its output and forwarding stdin and signals.
ProgramResult run_program(const RunOptions& o, const std::string& name, const fs::path& program, host::Machine& machine,
                          const vm::VmPaths& paths, SignalFd& signals, const std::vector<std::string>& env,
                          const std::string& cwd);

// The topology's node called `node`; throws Error naming its nodes otherwise
// (cmd_run_topology.cpp).
const topology::NodeSpec& node_spec(const topology::Spec& spec, const std::string& node);

// run --topology FILE --node NODE, once the program is resolved (`trees`:
// its write-through trees, shared with the node): brings the topology up and
// runs the program on the node (cmd_run_topology.cpp). Returns the run's
// exit status.
int run_on_topology(const RunOptions& o, const topology::Spec& spec, const fs::path& program, bool image_program,
                    const std::vector<fs::path>& trees, SignalFd& signals);

}  // namespace kestrel::cli

// kestrel run --topology FILE --node NODE [--] PROGRAM [ARGS...]
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/run_program.hpp"
#include "deploy/deployment.hpp"
#include "host/environment.hpp"
#include "topology/cluster.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace kestrel::cli {

namespace {

// run --topology FILE --node NODE: the topology comes up, the program runs
// on the node, and the whole topology is kept or torn down as one VM would be.
int run_in_cluster(const RunOptions& o, const topology::Spec& spec, const topology::UpOptions& up,
                   const fs::path& program, bool image_program, SignalFd& signals) {
  topology::Cluster cluster = topology::Cluster::up(spec, up);
  size_t index = cluster.index(o.node);
  deploy::Deployment& dep = cluster.deployment();
  dep.state().command = o.command;
  dep.state().keep = o.keep;
  dep.save();
  std::vector<std::string> nodes;
  for (const auto& n : spec.nodes) nodes.push_back(n.name);
  if (!o.quiet)
    say(fmt::format("topology {} up (nodes: {}), running on {}, deployment dir {}", dep.dir().filename().string(),
                    join(nodes, ", "), o.node, dep.dir().string()));
  std::vector<std::string> env = host::guest_environment(environ, o.env);
  std::erase_if(env, [](const std::string& e) { return e.rfind("KESTREL_VM=", 0) == 0; });
  env.push_back("KESTREL_VM=" + o.node);
  ProgramResult result =
      run_program(o, o.node, program, cluster.machine(index), cluster.paths(index), signals, env, fs::current_path());
  int status = result.status;
  if (result.how == ProgramResult::How::kInterrupted) return status;  // the cluster is torn down
  if (result.how == ProgramResult::How::kVmGone) {
    cluster.fail_and_keep_logs(kExitKestrel);
    return kExitKestrel;
  }
  bool keep = o.keep == "always" || (o.keep == "on-failure" && status != 0);
  if (!keep) return status;
  try {
    cluster.keep();
  } catch (const Error& e) {
    say(std::string("warning: cannot keep topology ") + dep.dir().string() + ": " + e.what());
    return status;
  }
  auto copy = image_program ? std::nullopt : keep_program_copy(dep.dir(), program);
  if (status != 0)
    say(fmt::format("test failed (exit status {}); topology {} remains running (nodes: {}), deployment dir {}", status,
                    dep.dir().filename().string(), join(nodes, ", "), dep.dir().string()));
  else
    say(fmt::format("topology {} remains running (--keep always; nodes: {}), deployment dir {}",
                    dep.dir().filename().string(), join(nodes, ", "), dep.dir().string()));
  for (const auto& line : topology::describe_commands(self_command(), dep.dir(), nodes)) say(line);
  if (copy) say(fmt::format("  program:  {} (a copy of the program as it ran)", copy->string()));
  return status;
}

}  // namespace

const topology::NodeSpec& node_spec(const topology::Spec& spec, const std::string& node) {
  std::string names;
  for (const auto& n : spec.nodes) {
    if (n.name == node) return n;
    names += (names.empty() ? "" : ", ") + n.name;
  }
  fail("{} has no node named {} (its nodes: {})", spec.file.string(), node, names);
}

int run_on_topology(const RunOptions& o, const topology::Spec& spec, const fs::path& program, bool image_program,
                    const std::vector<fs::path>& trees, SignalFd& signals) {
  topology::UpOptions up;
  up.vm = o.vm;
  up.vm.debug = o.debug;
  up.vm.signal_fd = signals.fd();
  if (!o.quiet) up.vm.notice = [](const std::string& line) { say(line); };
  up.say = up.vm.notice;
  up.name = o.name;
  up.extra_node = o.node;
  up.extra_shares = o.shares;
  up.extra_trees = trees;
  if (!image_program) up.extra_program = program;
  try {
    return run_in_cluster(o, spec, up, program, image_program, signals);
  } catch (const Interrupted& e) {
    say(fmt::format("interrupted by signal {}: the topology was torn down", e.signo()));
    return 128 + e.signo();
  }
}

}  // namespace kestrel::cli

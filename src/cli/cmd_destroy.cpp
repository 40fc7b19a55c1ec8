// kestrel destroy -f DIR | NAME... | --all
#include <algorithm>
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "deploy/deployment.hpp"
#include "deploy/reaper.hpp"
#include "deploy/registry.hpp"
#include "deploy/teardown.hpp"
#include "util/error.hpp"

namespace kestrel::cli {

int cmd_destroy(const Args& args) {
  std::vector<std::string> dirs, names;
  bool all = false;
  CLI::App app(
      "Tear deployments down: kill their VMs (in parallel) and remove their directories.\n"
      "Only kestrel's own deployments: a directory directly in the runtime dir, yours, that\n"
      "kestrel made (symlinks are resolved first; a link to a deployment destroys the\n"
      "deployment). Anything else is refused before anything is killed or deleted.\n"
      "A deployment or VM that does not exist is an error (\"no such deployment\", exit\n"
      "status 1), for -f DIR and NAME alike; nothing is destroyed then. No root needed.\n"
      "Prints one line per deployment: destroyed DIR (STATE).\n\n"
      "  kestrel destroy -f DIR      the deployment in DIR\n"
      "  kestrel destroy NAME...     the deployments holding these VMs (a topology's node\n"
      "                              names the whole topology; a name that two deployments\n"
      "                              have is refused: use -f DIR)\n"
      "  kestrel destroy --all       every deployment of this user, running ones included\n",
      "kestrel destroy");
  app.add_option("-f,--dir", dirs, "a deployment directory (repeatable)");
  app.add_option("names", names, "VM names");
  app.add_flag("--all", all, "every deployment of this user");
  if (!parse(app, args)) return 0;
  if (dirs.empty() && names.empty() && !all) fail("nothing to destroy: give -f DIR, a VM NAME or --all");

  // Every target is checked before anything is killed or deleted.
  std::vector<std::filesystem::path> targets;
  std::string problems;
  auto problem = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
  for (const auto& dir : dirs) {
    try {
      auto real = deploy::resolve_deployment_dir(dir);
      deploy::check_ours(real);
      targets.push_back(real);
    } catch (const Error& e) {
      problem(e.what());
    }
  }
  std::vector<deploy::DeploymentInfo> deployments;
  if (all || !names.empty()) deployments = deploy::list_deployments();
  for (const auto& name : names) {
    std::vector<std::filesystem::path> holders;
    for (const auto& d : deployments)
      if (d.state && std::any_of(d.state->vms.begin(), d.state->vms.end(),
                                 [&](const deploy::VmRecord& vm) { return vm.name == name; }))
        holders.push_back(d.dir);
    if (holders.empty()) {
      problem("no such deployment: no VM is named " + name + " (see `kestrel ls`)");
    } else if (holders.size() > 1) {
      // Topologies name their VMs after their nodes: two copies share names.
      std::string where;
      for (const auto& h : holders) where += (where.empty() ? "" : ", ") + h.string();
      problem(fmt::format("{} deployments have a VM named {} ({}): name one with -f DIR", holders.size(), name, where));
    } else {
      targets.push_back(holders.front());
    }
  }
  if (!problems.empty()) throw Error(problems);

  auto print = [](const std::filesystem::path& dir, const char* liveness) {
    std::printf("destroyed %s (%s)\n", dir.c_str(), liveness);
    std::fflush(stdout);
  };
  if (all) {
    for (const auto& d : deployments) {
      if (d.state) targets.push_back(d.dir);
    }
    // Leftovers without a state file go through gc's rules.
    deploy::GcPolicy policy;
    policy.all = true;
    deploy::collect_garbage(policy, false, print);
  }
  deploy::destroy_deployments(targets, Deadline::after(std::chrono::seconds(10)), print);
  return 0;
}

}  // namespace kestrel::cli

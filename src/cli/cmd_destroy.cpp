// kestrel destroy -f DIR | NAME... | --all
#include <algorithm>

#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "deploy/deployment.hpp"
#include "deploy/registry.hpp"
#include "deploy/teardown.hpp"
#include "util/error.hpp"

namespace kestrel::cli {

int cmd_destroy(const Args& args) {
  std::vector<std::string> dirs, names;
  bool all = false;
  CLI::App app(
      "Tear deployments down: kill their VMs (in parallel) and remove their directories.\n"
      "Idempotent: a deployment that is already gone is not an error. No root needed.\n\n"
      "  kestrel destroy -f DIR      the deployment in DIR\n"
      "  kestrel destroy NAME...     the deployments holding these VMs\n"
      "  kestrel destroy --all       every deployment of this user, running ones included\n",
      "kestrel destroy");
  app.add_option("-f,--dir", dirs, "a deployment directory (repeatable)");
  app.add_option("names", names, "VM names");
  app.add_flag("--all", all, "every deployment of this user");
  if (!parse(app, args)) return 0;
  if (dirs.empty() && names.empty() && !all) fail("nothing to destroy: give -f DIR, a VM NAME or --all");

  std::vector<std::filesystem::path> targets(dirs.begin(), dirs.end());
  if (all || !names.empty()) {
    auto deployments = deploy::list_deployments();
    for (const auto& name : names) {
      auto it = std::find_if(deployments.begin(), deployments.end(), [&](const deploy::DeploymentInfo& d) {
        return d.state && std::any_of(d.state->vms.begin(), d.state->vms.end(),
                                      [&](const deploy::VmRecord& vm) { return vm.name == name; });
      });
      if (it == deployments.end()) fail("no deployment has a VM named {} (see `kestrel ls`)", name);
      targets.push_back(it->dir);
    }
    if (all) {
      for (const auto& d : deployments) {
        if (d.state) targets.push_back(d.dir);
      }
      // Leftovers without a state file go through gc's rules.
      deploy::GcPolicy policy;
      policy.all = true;
      deploy::collect_garbage(policy, false);
    }
  }
  deploy::destroy_deployments(targets, Deadline::after(std::chrono::seconds(10)));
  return 0;
}

}  // namespace kestrel::cli

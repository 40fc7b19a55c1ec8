// kestrel destroy -f DIR
#include "cli/commands.hpp"
#include "cli/parse.hpp"
#include "deploy/deployment.hpp"
#include "util/error.hpp"

namespace kestrel::cli {

int cmd_destroy(const Args& args) {
  std::string dir;
  CLI::App app(
      "Tear a deployment down: kill its VMs and remove its directory.\n"
      "Idempotent: a deployment that is already gone is not an error. No root needed.\n",
      "kestrel destroy");
  app.add_option("-f,--dir", dir, "the deployment directory")->required();
  if (!parse(app, args)) return 0;
  deploy::destroy_deployment(dir, Deadline::after(std::chrono::seconds(10)));
  return 0;
}

}  // namespace kestrel::cli

// kestrel config [RUN OPTIONS] [--keys | --markdown]
#include <cstdio>
#include <cstdlib>

#include "cli/commands.hpp"
#include "cli/config_options.hpp"
#include "cli/parse.hpp"
#include "config/config.hpp"
#include "config/reference.hpp"
#include "host/write_through.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace kestrel::cli {

namespace {

const char* kConfigHelp = R"(Print the configuration `kestrel run` would use here: every key, its value
and where the value came from, as TOML that can be pasted into kestrel.toml.

Precedence, highest first: the command line (the run options below), KESTREL_*
environment variables, the project file kestrel.toml (the first found in the
current directory or a parent), the user file $XDG_CONFIG_HOME/kestrel/config.toml
(~/.config/kestrel/config.toml), then built-in defaults. A bad file is an error
"PATH:LINE: message" (exit status 1), never a silent default.

--keys lists every key with its type, default, variable and option;
docs/config.md explains them.
)";

// Warns about KESTREL_* variables that kestrel does not know (typos).
void warn_unknown_variables() {
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    if (entry.rfind("KESTREL_", 0) != 0) continue;
    std::string name(entry.substr(0, entry.find('=')));
    bool known = false;
    std::string best;
    size_t best_distance = 3;
    auto consider = [&](const char* candidate) {
      if (name == candidate) known = true;
      // A prefix ("KESTREL_MEM" of "KESTREL_MEMORY") is the likeliest slip.
      size_t d = std::string_view(candidate).rfind(name, 0) == 0 ? 0 : edit_distance(name, candidate);
      if (d < best_distance) best = candidate, best_distance = d;
    };
    for (const auto& k : config::keys()) consider(k.env);
    for (const auto& v : config::environment_only()) consider(v.name);
    if (known || name == "KESTREL_VM" || name == "KESTREL_BUILD_DIR" || name == "KESTREL_SOURCE_DIR") continue;
    say(fmt::format("warning: {} is not a kestrel variable{}", name,
                    best.empty() ? "" : " (did you mean " + best + "?)"));
  }
}

}  // namespace

int cmd_config(const Args& args) {
  CLI::App app(kConfigHelp, "kestrel config");
  ConfigOptions config_options(app);
  bool list_keys = false, markdown = false;
  app.add_flag("--keys", list_keys, "list the keys instead: type, default, variable, option, meaning");
  app.add_flag("--markdown", markdown, "print the key table of docs/config.md (which a test checks against it)");
  if (!parse(app, args)) return 0;
  if (list_keys) {
    std::fputs(config::key_reference_text().c_str(), stdout);
    return 0;
  }
  if (markdown) {
    std::fputs(config::key_reference_markdown().c_str(), stdout);
    return 0;
  }

  warn_unknown_variables();
  config::Config config = load_config(config_options);
  std::error_code ec;
  auto cwd = std::filesystem::current_path(ec);
  if (auto p = config.project_file())
    std::printf("# project file: %s\n", config::display_path(*p, cwd).c_str());
  else
    std::printf("# project file: none (no %s in %s or a parent)\n", config::kProjectFileName, cwd.c_str());
  if (auto u = config.user_file())
    std::printf("# user file:    %s%s\n", u->c_str(), config.user_file_exists() ? "" : " (not present)");
  else
    std::printf("# user file:    none ($XDG_CONFIG_HOME and $HOME are unset)\n");
  for (const config::Entry& e : config.entries()) {
    std::string line = fmt::format("{} = {}", e.key->name, config::format_value(e.value));
    std::printf("%-40s # %s\n", line.c_str(), config::describe_origin(e.origin).c_str());
  }
  for (const config::EnvOnly& v : config::environment_only()) {
    if (const char* value = std::getenv(v.name); value && *value)
      std::printf("# %s=%s (environment)\n", v.name, shell_quote(value).c_str());
  }
  // What write_through means here, for a program run from this directory
  // (its build tree, if any, comes on top: `kestrel run --verbose` says).
  std::vector<std::string> trees;
  for (const auto& t : config.list("write_through"))
    if (t != "none") trees.push_back(t);
  std::printf("# write-through trees for programs run from here (a program's build tree is added per run):\n");
  try {
    host::WritePlan plan = host::plan_write_through(
        {trees, config::describe_origin(config.entry("write_through").origin), cwd, std::nullopt, host::user_home()});
    for (const auto& line : host::describe_write_plan(plan)) std::printf("#   %s\n", line.c_str());
  } catch (const Error& e) {
    std::printf("#   error: %s\n", e.what());
  }
  return 0;
}

}  // namespace kestrel::cli

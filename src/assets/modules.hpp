// Which kernel modules a guest needs, and in what order to load them: the
// closure of a wanted list under depends=, skipping modules built into the
// kernel, ordered so that every module comes after all its dependencies.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "assets/modinfo.hpp"
#include "util/error.hpp"

namespace kestrel::assets {

// A module that is neither in the modules directory nor built in: what
// load_order throws, so that a boot can say which feature of the kernel is
// missing (assets/kernel_config.hpp) rather than which file.
class MissingModule : public Error {
 public:
  MissingModule(const std::string& message, std::string module, std::vector<std::string> chain)
      : Error(message), module_(std::move(module)), chain_(std::move(chain)) {}
  const std::string& module() const { return module_; }
  // The modules that led to it, outermost (the one asked for) first; empty
  // when it was asked for itself.
  const std::vector<std::string>& chain() const { return chain_; }

 private:
  std::string module_;
  std::vector<std::string> chain_;
};

// How load_order finds out about modules.
struct ModuleLookup {
  // The depends= of a module (normalized name), or nullptr if no file holds it.
  std::function<const std::vector<std::string>*(const std::string& name)> depends;
  // Module names built into the kernel (from modules.builtin).
  const std::unordered_set<std::string>* builtin = nullptr;
  // A module that is neither present nor listed as built in is an error,
  // unless this is set (a kernel without modules: everything is built in).
  bool missing_ok = false;
  // Where modules were looked for, for error messages ("in /lib/modules/x").
  std::string where;
};

// The closure of `wanted` in dependency order (deterministic: wanted in the
// given order, each module's dependencies in their listed order). Throws
// MissingModule naming a module that is missing, and who needed it, or Error
// for a dependency cycle.
std::vector<std::string> load_order(const std::vector<std::string>& wanted, const ModuleLookup& lookup);

// A directory tree of module files (e.g. /lib/modules/$(uname -r), or the
// flattened modules/ of a cached kernel), with its modules.builtin if any.
// Modules are found by file name first and parsed on demand, so resolving a
// handful of modules in a tree of thousands reads only those files.
class ModuleTree {
 public:
  struct Module {
    std::string name;
    std::filesystem::path path;
    std::vector<std::string> depends;
  };

  // Lists the tree (file names only). An empty dir means "no modules".
  explicit ModuleTree(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::unordered_set<std::string>& builtin() const { return builtin_; }
  // modules.builtin next to the modules (empty path if there is none).
  const std::filesystem::path& builtin_file() const { return builtin_file_; }

  // The module called `name` (normalized), or nullptr.
  const Module* find(const std::string& name);
  // Whether a file is named after module `name` (normalized): a cheap guess
  // at find(), which reads nothing.
  bool has_file_for(const std::string& name) const { return by_file_name_.contains(name); }

  // load_order() over this tree, as modules.
  std::vector<const Module*> resolve(const std::vector<std::string>& wanted);

 private:
  const Module* parse(const std::filesystem::path& path);
  void index_everything();

  std::filesystem::path dir_;
  std::filesystem::path builtin_file_;
  std::unordered_set<std::string> builtin_;
  std::map<std::string, std::vector<std::filesystem::path>> by_file_name_;
  std::unordered_map<std::string, std::unique_ptr<Module>> by_path_;  // parsed files
  std::unordered_map<std::string, const Module*> by_name_;            // parsed, by module name
  bool indexed_everything_ = false;
};

}  // namespace kestrel::assets

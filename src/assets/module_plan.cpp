#include "assets/module_plan.hpp"

#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "assets/cache.hpp"
#include "assets/file_stamp.hpp"
#include "assets/modules.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/json.hpp"
#include "util/sha256.hpp"

namespace kestrel::assets {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kPlanFormat = 1;

std::optional<std::vector<PlannedModule>> load_plan(const fs::path& file, const fs::path& dir,
                                                    const std::vector<std::string>& wanted) {
  std::optional<std::string> text;
  try {
    text = read_file_if_exists(file);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!text) return std::nullopt;
  try {
    json j = parse_json(*text);
    if (j.at("format").get<int>() != kPlanFormat || j.at("dir").get<std::string>() != dir.string() ||
        j.at("wanted").get<std::vector<std::string>>() != wanted)
      return std::nullopt;
    if (!same_stamp(j.at("builtin"), dir / "modules.builtin")) return std::nullopt;
    std::vector<PlannedModule> plan;
    for (const json& m : j.at("modules")) {
      fs::path path = m.at("path").get<std::string>();
      if (!same_stamp(m, path)) return std::nullopt;
      plan.push_back({m.at("name").get<std::string>(), path});
    }
    return plan;
  } catch (const json::exception&) {
    return std::nullopt;  // damaged: recompute and overwrite
  }
}

}  // namespace

std::vector<PlannedModule> plan_modules(const fs::path& modules_dir, const std::vector<std::string>& wanted) {
  if (modules_dir.empty()) return {};
  fs::path dir = fs::absolute(modules_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();

  Sha256 key;
  key.update("kestrel-module-plan-1");
  key.update(std::string_view(dir.c_str(), dir.native().size() + 1));  // with its NUL
  for (const std::string& name : wanted) key.update(std::string_view(name.c_str(), name.size() + 1));
  fs::path plans = cache_dir() / "initramfs" / "plans";
  fs::path file = plans / (key.hex_digest() + ".json");
  if (auto plan = load_plan(file, dir, wanted)) return *plan;

  ModuleTree tree(dir);
  std::vector<PlannedModule> plan;
  json modules = json::array();
  for (const ModuleTree::Module* m : tree.resolve(wanted)) {
    plan.push_back({m->name, m->path});
    json entry = file_stamp(m->path);
    if (entry.is_null()) fail_errno("cannot stat {}", m->path.string());
    entry["name"] = m->name;
    entry["path"] = m->path.string();
    modules.push_back(entry);
  }
  json j = {{"format", kPlanFormat},
            {"dir", dir.string()},
            {"wanted", wanted},
            {"builtin", file_stamp(dir / "modules.builtin")},
            {"modules", modules}};
  make_dirs(plans, 0755);
  write_file_atomic(file, dump_json(j, 1) + "\n");
  return plan;
}

}  // namespace kestrel::assets

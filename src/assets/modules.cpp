#include "assets/modules.hpp"

#include <algorithm>
#include <system_error>
#include <tuple>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {

namespace fs = std::filesystem;

std::vector<std::string> load_order(const std::vector<std::string>& wanted, const ModuleLookup& lookup) {
  enum class State { kVisiting, kDone };
  std::unordered_map<std::string, State> state;
  std::vector<std::string> order;
  std::vector<std::string> path;  // the chain being visited, for messages

  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (auto it = state.find(name); it != state.end()) {
      if (it->second == State::kDone) return;
      std::string cycle;
      for (auto at = std::find(path.begin(), path.end(), name); at != path.end(); ++at) cycle += *at + " → ";
      fail("kernel modules {} form a dependency cycle: {}{}", lookup.where, cycle, name);
    }
    if (lookup.builtin && lookup.builtin->contains(name)) {
      state[name] = State::kDone;
      return;
    }
    const std::vector<std::string>* depends = lookup.depends(name);
    if (!depends) {
      if (lookup.missing_ok) {
        state[name] = State::kDone;
        return;
      }
      std::string needed_by = path.empty() ? "" : fmt::format(" (needed by {})", path.back());
      throw MissingModule(fmt::format("kernel module {}{} is not {} and not built into the kernel (modules.builtin)",
                                      name, needed_by, lookup.where),
                          name, path);
    }
    state[name] = State::kVisiting;
    path.push_back(name);
    for (const std::string& dep : *depends) visit(normalize_module_name(dep));
    path.pop_back();
    state[name] = State::kDone;
    order.push_back(name);
  };

  for (const std::string& name : wanted) visit(normalize_module_name(name));
  return order;
}

ModuleTree::ModuleTree(fs::path dir) : dir_(std::move(dir)) {
  if (dir_.empty()) return;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) fail("kernel modules directory {} does not exist", dir_.string());
  fs::path builtin = dir_ / "modules.builtin";
  if (auto text = read_file_if_exists(builtin)) {
    builtin_file_ = builtin;
    builtin_ = parse_modules_builtin(*text);
  }
  // Directory symlinks (build/, source/ in /lib/modules/x) are not followed.
  fs::recursive_directory_iterator it(dir_, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) fail("cannot list {}: {}", dir_.string(), ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) fail("cannot list {}: {}", dir_.string(), ec.message());
    std::string file_name = it->path().filename().string();
    if (is_module_file(file_name) && it->is_regular_file(ec))
      by_file_name_[module_name_from_file(file_name)].push_back(it->path());
  }
  // Where one name has several files, prefer updates/ and extra/ (as depmod
  // does), then the shortest path; sorting makes the choice deterministic.
  auto rank = [](const fs::path& p) {
    std::string s = p.string();
    return s.find("/updates/") != std::string::npos ? 0 : s.find("/extra/") != std::string::npos ? 1 : 2;
  };
  for (auto& [name, paths] : by_file_name_) {
    std::sort(paths.begin(), paths.end(), [&](const fs::path& a, const fs::path& b) {
      return std::tuple(rank(a), a.string().size(), a.string()) < std::tuple(rank(b), b.string().size(), b.string());
    });
  }
}

const ModuleTree::Module* ModuleTree::parse(const fs::path& path) {
  auto [it, inserted] = by_path_.try_emplace(path.string());
  if (!inserted) return it->second.get();
  ModInfo info = parse_modinfo(read_module_file(path), path.string());
  it->second = std::make_unique<Module>(Module{info.name, path, std::move(info.depends)});
  by_name_.try_emplace(it->second->name, it->second.get());
  return it->second.get();
}

void ModuleTree::index_everything() {
  if (indexed_everything_) return;
  indexed_everything_ = true;
  for (const auto& [file_name, paths] : by_file_name_)
    for (const fs::path& path : paths) parse(path);
}

const ModuleTree::Module* ModuleTree::find(const std::string& name) {
  if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
  // Almost always the file is named after the module.
  if (auto it = by_file_name_.find(name); it != by_file_name_.end()) {
    for (const fs::path& path : it->second)
      if (const Module* m = parse(path); m->name == name) return m;
  }
  // A module whose file has another name: only a full scan can tell.
  index_everything();
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::vector<const ModuleTree::Module*> ModuleTree::resolve(const std::vector<std::string>& wanted) {
  ModuleLookup lookup;
  lookup.depends = [&](const std::string& name) -> const std::vector<std::string>* {
    const Module* m = dir_.empty() ? nullptr : find(name);
    return m ? &m->depends : nullptr;
  };
  lookup.builtin = &builtin_;
  lookup.missing_ok = dir_.empty();
  lookup.where = dir_.empty() ? "available (no modules directory)" : fmt::format("in {}", dir_.string());
  std::vector<const Module*> out;
  for (const std::string& name : load_order(wanted, lookup)) out.push_back(find(name));
  return out;
}

}  // namespace kestrel::assets

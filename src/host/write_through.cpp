#include "host/write_through.hpp"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::host {

namespace fs = std::filesystem;

namespace {

// Whole trees that belong to the system: nothing in them is a test's work.
constexpr std::array<std::string_view, 17> kSystemTrees = {"/usr",    "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                                           "/libx32", "/etc", "/boot", "/opt", "/srv",   "/var",
                                                           "/proc",   "/sys", "/dev",  "/run", "/snap"};
// Directories everyone shares: their subdirectories may be someone's work
// (go builds in /tmp/go-build*), they themselves never are.
constexpr std::array<std::string_view, 6> kSharedDirs = {"/tmp", "/var/tmp", "/home", "/mnt", "/media", "/root"};

bool is_dir(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool lexists(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

std::optional<fs::path> resolved(const fs::path& p) {
  std::error_code ec;
  fs::path c = fs::canonical(p, ec);
  if (ec) return std::nullopt;
  return c;
}

// The nearest ancestor of cwd (itself included) that marks a project.
std::optional<WriteTree> find_project(const fs::path& cwd) {
  for (fs::path d = cwd;; d = d.parent_path()) {
    for (const char* marker : {".git", "kestrel.toml"})
      if (lexists(d / marker)) return WriteTree{d, fmt::format("project (holds {})", marker)};
    if (d == d.root_path() || d.empty()) return std::nullopt;
  }
}

// The build tree a test runner built the program in, if it is one we know.
std::optional<WriteTree> find_build_tree(const fs::path& program) {
  fs::path dir = program.parent_path();
  std::string name = dir.filename().string(), parent = dir.parent_path().filename().string();
  auto digits_after = [](const std::string& s, std::string_view prefix) {
    return s.size() > prefix.size() && s.compare(0, prefix.size(), prefix) == 0 &&
           std::all_of(s.begin() + static_cast<long>(prefix.size()), s.end(),
                       [](char c) { return c >= '0' && c <= '9'; });
  };
  if (digits_after(name, "b") && digits_after(parent, "go-build"))
    return WriteTree{dir, "go's work directory of the test binary"};
  for (fs::path d = dir;; d = d.parent_path()) {
    if (lexists(d / "CMakeCache.txt")) return WriteTree{d, "CMake build tree of the program (holds CMakeCache.txt)"};
    if (lexists(d / "CACHEDIR.TAG"))
      return WriteTree{d, "build tree of the program (holds CACHEDIR.TAG, e.g. cargo's target)"};
    if (d == d.root_path() || d.empty()) return std::nullopt;
  }
}

}  // namespace

std::string write_refusal(const fs::path& dir, const fs::path& home) {
  if (dir == "/") return "the root";
  for (std::string_view shared : kSharedDirs)
    if (dir == shared) return "shared by all users";
  bool under_var_tmp = path_within(dir, "/var/tmp");
  for (std::string_view sys : kSystemTrees)
    if (path_within(dir, sys) && !under_var_tmp) return "a system directory";
  if (dir.parent_path() == "/home") return "a home directory";
  if (!home.empty() && home != "/" && path_within(home, dir)) return "your home directory or above it";
  if (!is_dir(dir)) return "not a directory";
  if (::access(dir.c_str(), W_OK) != 0) return fmt::format("not writable by you ({})", std::strerror(errno));
  return "";
}

fs::path user_home() {
  if (const char* h = std::getenv("HOME"); h && *h == '/') return resolved(h).value_or(h);
  if (const passwd* pw = ::getpwuid(::getuid()); pw && pw->pw_dir && *pw->pw_dir == '/')
    return resolved(pw->pw_dir).value_or(pw->pw_dir);
  return {};
}

WritePlan plan_write_through(const WriteInputs& in) {
  WritePlan plan;
  auto add = [&](WriteTree t) {
    for (const auto& have : plan.trees)
      if (path_within(t.path, have.path)) return;
    std::erase_if(plan.trees, [&](const WriteTree& have) { return path_within(have.path, t.path); });
    plan.trees.push_back(std::move(t));
  };
  // Refused candidates are reported once, by path.
  auto refuse = [&](WriteTree t, const std::string& why) {
    for (const auto& r : plan.refused)
      if (r.path == t.path) return;
    t.why += ": not written through, " + why;
    plan.refused.push_back(std::move(t));
  };
  auto consider = [&](std::optional<WriteTree> t) {
    if (!t) return false;
    std::string why = write_refusal(t->path, in.home);
    if (why.empty()) {
      add(std::move(*t));
      return true;
    }
    refuse(std::move(*t), why);
    return false;
  };

  for (const auto& item : in.setting) {
    if (item == "none") continue;
    if (item == "auto") {
      if (auto cwd = resolved(in.cwd)) {
        if (!consider(find_project(*cwd))) consider(WriteTree{*cwd, "working directory"});
      }
      if (in.program) {
        if (auto program = resolved(*in.program)) consider(find_build_tree(*program));
      }
      continue;
    }
    std::error_code ec;
    fs::path dir = fs::canonical(item, ec);
    if (ec) fail("cannot write through {} ({}): {}", item, in.setting_origin, ec.message());
    std::string why = write_refusal(dir, in.home);
    if (!why.empty()) fail("cannot write through {} ({}): {}", item, in.setting_origin, why);
    add(WriteTree{dir, "write_through setting"});
  }
  return plan;
}

std::vector<std::string> describe_write_plan(const WritePlan& plan) {
  std::vector<std::string> lines;
  if (plan.trees.empty()) lines.push_back("writes reach the host nowhere (no write-through trees)");
  for (const auto& t : plan.trees)
    lines.push_back(fmt::format("writes reach the host in {}: {}", t.path.string(), t.why));
  for (const auto& t : plan.refused) lines.push_back(fmt::format("{}: {}", t.path.string(), t.why));
  return lines;
}

}  // namespace kestrel::host

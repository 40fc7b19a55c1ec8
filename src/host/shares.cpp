#include "host/shares.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::host {

namespace fs = std::filesystem;

namespace {

// The guest kernel's own file systems: a share there would hide them.
bool reserved_in_guest(const fs::path& p) {
  return path_within(p, "/proc") || path_within(p, "/sys") || path_within(p, "/dev");
}

fs::path resolve_share(const std::string& given) {
  std::error_code ec;
  fs::path p = fs::canonical(given, ec);
  if (ec) fail("cannot share {}: {}", given, ec.message());
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) fail_errno("cannot share {}", given);
  if (!S_ISDIR(st.st_mode)) fail("cannot share {}: not a directory", given);
  if (p == "/")
    fail(
        "cannot share / : the host's root is already visible read-only in the VM; share the directories the "
        "program must write to instead");
  if (reserved_in_guest(p))
    fail("cannot share {}: the guest mounts its own file systems at /proc, /sys and /dev", given);
  return p;
}

}  // namespace

// The agent mounts these in the guest root (agent/setup.cpp, plan_mounts).
bool hidden_in_guest(const fs::path& p) { return reserved_in_guest(p) || path_within(p, "/run"); }

namespace {

bool in_system_dirs(const fs::path& p) {
  for (const char* dir : {"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"})
    if (path_within(p, dir)) return true;
  return false;
}

}  // namespace

bool is_image_program(const std::string& given) {
  if (given.find('/') == std::string::npos) return true;
  return in_system_dirs(fs::absolute(given).lexically_normal());
}

SharePlan plan_shares(const std::vector<config::Share>& shares, const fs::path& program,
                      const std::vector<fs::path>& write_trees, bool host_root) {
  struct Item {
    fs::path path;
    bool read_only;
  };
  std::vector<Item> items;
  for (const auto& s : shares) {
    fs::path p = resolve_share(s.path);
    for (const auto& other : items)
      if (other.path == p) fail("{} is shared twice (as {})", s.path, p.string());
    items.push_back({p, s.read_only});
  }
  for (const auto& tree : write_trees) {
    bool covered = std::any_of(items.begin(), items.end(), [&](const Item& i) {
      return i.path == tree || (!i.read_only && path_within(tree, i.path));
    });
    if (!covered) items.push_back({tree, false});
  }
  // A program the guest would not see at its own path: its directory, read-only.
  fs::path dir = program.parent_path();
  // (A relative program is found in the guest's PATH: nothing to share.)
  if (program.is_absolute() && (hidden_in_guest(program) || (!host_root && !in_system_dirs(program)))) {
    if (reserved_in_guest(dir))
      fail("cannot run {} in a VM: the guest mounts its own file systems at /proc, /sys and /dev", program.string());
    bool covered =
        std::any_of(items.begin(), items.end(), [&](const Item& i) { return path_within(dir, i.path.native()); });
    if (!covered) items.push_back({dir, true});
  }
  // Parents before children: a later mount must never hide an earlier one.
  std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
    return std::distance(a.path.begin(), a.path.end()) < std::distance(b.path.begin(), b.path.end());
  });

  SharePlan plan;
  if (host_root) {
    plan.devices.push_back({"root", "/", true});
    plan.mounts.push_back({"root", "", proto::MountKind::kRootOverlay});
  }
  for (size_t i = 0; i < items.size(); ++i) {
    std::string tag = "share" + std::to_string(i);
    plan.devices.push_back({tag, items[i].path, items[i].read_only});
    plan.mounts.push_back(
        {tag, items[i].path.string(), items[i].read_only ? proto::MountKind::kReadOnly : proto::MountKind::kReadWrite});
  }
  return plan;
}

void pad_share_devices(std::vector<vm::Share>& devices, const fs::path& empty_dir) {
  // Named as plan_shares names the next share, so that a padded VM's devices
  // equal those of one with a share more.
  size_t shares = static_cast<size_t>(
      std::count_if(devices.begin(), devices.end(), [](const vm::Share& d) { return d.tag != "root"; }));
  while (devices.size() < kMinShareDevices) devices.push_back({"share" + std::to_string(shares++), empty_dir, true});
}

}  // namespace kestrel::host

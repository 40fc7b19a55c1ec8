#include "image/host_check.hpp"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace kestrel::image {

namespace {

bool in_path(const std::string& program) {
  // newuidmap lives in /usr/bin, but a minimal PATH may miss it.
  return find_in_path(program) || ::access(("/usr/bin/" + program).c_str(), X_OK) == 0;
}

// mmdebstrap's unshare mode maps 65536 ids.
constexpr uint64_t kNeededIds = 65536;

}  // namespace

uint64_t subordinate_ids(const std::string& text, const std::string& user, unsigned uid) {
  uint64_t total = 0;
  for (const auto& line : split(text, '\n')) {
    auto fields = split(line, ':');
    if (fields.size() != 3) continue;
    if (fields[0] != user && fields[0] != std::to_string(uid)) continue;
    char* end = nullptr;
    unsigned long long count = std::strtoull(fields[2].c_str(), &end, 10);
    if (end && *end == '\0') total += count;
  }
  return total;
}

ToolsCheck check_build_tools(const std::filesystem::path& subuid, const std::filesystem::path& subgid) {
  ToolsCheck c;
  std::vector<std::string> packages, missing;
  if (!in_path("mmdebstrap")) {
    packages.push_back("mmdebstrap");
    missing.push_back("mmdebstrap");
  }
  uid_t uid = ::geteuid();
  if (uid == 0) {
    c.ok = missing.empty();
    c.detail = c.ok ? "mmdebstrap (root mode: running as root)" : "mmdebstrap is not installed";
    if (!c.ok) c.fix = "sudo apt-get install mmdebstrap";
    return c;
  }
  if (!in_path("newuidmap") || !in_path("newgidmap")) {
    packages.push_back("uidmap");
    missing.push_back("newuidmap/newgidmap (package uidmap)");
  }
  if (!in_path("fakeroot")) {
    packages.push_back("fakeroot");
    missing.push_back("fakeroot");
  }
  passwd* pw = ::getpwuid(uid);
  std::string user = pw ? pw->pw_name : std::to_string(uid);
  uint64_t uids = 0, gids = 0;
  try {
    uids = subordinate_ids(read_file_if_exists(subuid).value_or(""), user, uid);
    gids = subordinate_ids(read_file_if_exists(subgid).value_or(""), user, uid);
  } catch (const Error&) {
  }
  std::vector<std::string> fixes;
  if (!packages.empty()) {
    std::string list;
    for (const auto& p : packages) list += " " + p;
    fixes.push_back("sudo apt-get install" + list);
  }
  if (uids < kNeededIds || gids < kNeededIds) {
    missing.push_back(fmt::format("{} subordinate uids and {} gids for {} in {} and {} (mmdebstrap needs {})", uids,
                                  gids, user, subuid.string(), subgid.string(), kNeededIds));
    // The range after the usual allocations of useradd (100000 + 65536 per user).
    fixes.push_back(fmt::format("sudo usermod --add-subuids {0}-{1} --add-subgids {0}-{1} {2}",
                                100000 + 65536 * (uid % 1000), 100000 + 65536 * (uid % 1000) + kNeededIds - 1, user));
  }
  auto userns = read_file_if_exists("/proc/sys/kernel/unprivileged_userns_clone");
  if (userns && trim(*userns) == "0") {
    missing.push_back("unprivileged user namespaces are off (kernel.unprivileged_userns_clone = 0)");
    fixes.push_back("sudo sysctl -w kernel.unprivileged_userns_clone=1");
  }
  c.ok = missing.empty();
  if (c.ok) {
    c.detail = fmt::format("mmdebstrap (unshare mode), uidmap, fakeroot; {} subordinate ids for {}", uids, user);
    return c;
  }
  c.detail = "cannot build images as " + user + ": missing ";
  for (size_t i = 0; i < missing.size(); ++i) c.detail += (i ? "; " : "") + missing[i];
  for (size_t i = 0; i < fixes.size(); ++i) c.fix += (i ? " && " : "") + fixes[i];
  return c;
}

}  // namespace kestrel::image

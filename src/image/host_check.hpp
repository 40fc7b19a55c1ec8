// What building images needs on this host (docs/images.md, "Unprivileged
// builds"): mmdebstrap; as a user other than root also its unshare mode's
// needs (newuidmap/newgidmap from the uidmap package, subordinate ids in
// /etc/subuid and /etc/subgid, user namespaces) and fakeroot. `kestrel
// doctor` reports it, and `image build` checks it before it starts.
#pragma once

#include <filesystem>
#include <string>

namespace kestrel::image {

struct ToolsCheck {
  bool ok = true;
  std::string detail;  // what is there, or what is missing
  std::string fix;     // the exact commands that fix it ("" when ok)
};

// `subuid`/`subgid` are the files to read (tests pass their own).
ToolsCheck check_build_tools(const std::filesystem::path& subuid = "/etc/subuid",
                             const std::filesystem::path& subgid = "/etc/subgid");

// The number of subordinate ids `user` (a name) or `uid` has in a
// /etc/subuid-style text.
uint64_t subordinate_ids(const std::string& text, const std::string& user, unsigned uid);

}  // namespace kestrel::image

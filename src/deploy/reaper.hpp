// The one place that deletes deployment directories and kills QEMUs:
// `destroy`, `gc`, the start-up sweep and a finishing run (RunGuard) all come
// through here. What may be deleted and killed, and nothing else, is written
// down in docs/deployment-dir.md ("What kestrel deletes and kills").
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "deploy/deployment.hpp"
#include "util/fd.hpp"

namespace kestrel::deploy {

// Written first into every deployment directory kestrel creates: proof that
// kestrel made it. Holds marker_text(NAME) for the directory NAME.
constexpr const char* kMarkerFile = "made-by-kestrel";
std::string marker_text(const std::string& name);

// `dir` with every symlink resolved (realpath: a link to a deployment, or a
// path through a symlinked parent, names the deployment itself). Throws
// "no such deployment" if nothing is there.
fs::path resolve_deployment_dir(const fs::path& dir);

// Why the directory `dir` (already resolved) is not one of kestrel's
// deployments, or "" if it is. Ours means all of: a direct child of the
// (resolved) runtime dir, a real directory owned by this user, and made by
// kestrel: its marker file names it, or (deployments made before the marker)
// its deployment.json holds every field kestrel writes next to runner.lock.
std::string why_not_ours(const fs::path& dir);
// Throws why_not_ours() unless it is empty.
void check_ours(const fs::path& dir);

// SIGKILLs every live QEMU of the deployment in `dir` (find_vm_processes:
// the recorded pids, and with `scan` any process of ours naming a QMP socket
// in `dir`), each checked again through its pidfd so a pid recycled since
// is never hit. Returns pidfds to wait on. Throws if a kill fails: then
// the caller must not remove the directory (we would lose track of a QEMU).
std::vector<UniqueFd> kill_deployment_vms(const fs::path& dir, const State* state, bool scan);

// Removes the deployment directory `dir` (resolved): refuses unless
// check_ours() passes and no QEMU of ours still names it, then removes the
// tree with remove_tree_one_fs (no symlinks followed, one file system,
// `chmod 000` directories of ours made removable). A missing `dir` is fine.
// `check_no_vm` false skips the look for a QEMU naming it (a scan of /proc)
// for a caller that knows: a run that holds the runner lock and whose every
// QEMU was owned by a `Child` that killed and reaped it.
void remove_deployment_dir(const fs::path& dir, bool check_no_vm = true);

}  // namespace kestrel::deploy

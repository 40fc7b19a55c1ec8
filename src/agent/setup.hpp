// SETUP (docs/protocol.md, "Setup"; docs/guest.md, "The guest root after
// SETUP"): the per-VM work that turns a booted (or restored) agent into the
// VM for one run. All of it happens here, never at boot, because the host may
// snapshot an agent that waits with nothing mounted and restore it many times.
#pragma once

#include <string>
#include <vector>

#include "proto/messages.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace kestrel::agent {

// 9p options. The root overlay's lower layer is read-only and host files do
// not change under a run, so the guest may cache freely (cache=loose);
// read-write shares write through (cache=mmap: no page cache for read/write,
// but shared mmap works) so data is on the host when the program exits.
constexpr const char* k9pBaseOptions = "trans=virtio,version=9p2000.L,msize=262144";
constexpr const char* k9pCachedOptions = "cache=loose";
constexpr const char* k9pWriteThroughOptions = "cache=mmap";

struct SetupPaths {
  std::string sysroot = "/sysroot";      // where the root (overlay or disk) is mounted
  std::string mnt = "/mnt";              // holds lower/ and rw/
  std::string modules = "/lib/modules";  // holds load.disk (docs/guest.md)
};

// How long a disk root's device node may take to appear: devtmpfs creates it
// asynchronously after virtio_blk has found the disk.
constexpr int kDiskWaitMs = 5000;

// A SETUP refused before it changed anything (an invalid request): the VM is
// as it was, so a later SETUP may still be accepted.
class InvalidSetup : public Error {
 public:
  using Error::Error;
};

struct MountStep {
  std::string source, target, fstype, data;
  unsigned long flags = 0;
  std::vector<std::string> make_dirs;  // mkdir -p these first
  // Resolve target (and make_dirs) inside the guest root, so that symlinks
  // there (a host /home -> /data/home) lead where programs will look.
  bool in_guest_root = false;
  std::string what;  // for error messages, e.g. "9p share 'bay' at /tmp/bay"
  // A disk root's mount: a failure quotes what the kernel logged about the
  // device ("EXT4-fs (vda): ..."), which errno cannot tell.
  bool disk = false;
};

struct MountPlan {
  std::vector<MountStep> steps;
  std::string root;  // the guest root for programs afterwards ("" = unchanged)
  // A disk root's device ("/dev/vda"): before the steps, the disk modules are
  // loaded and the device node is waited for. "" for none.
  std::string device;
  // A root overlay's lower and upper layers ("" for a disk root or none):
  // the VM's own /etc files go into the upper one before the overlay is
  // mounted (agent/identity.hpp).
  std::string lower, upper;
};

// The mounts of a SETUP, in the order they are made: the root mount (overlay
// or disk) first, whatever its position in the list, so that shares land
// inside it, then the shares in order. Throws Error for an invalid request
// (two root mounts, a relative target, a bad device or file system type, a
// NUL byte, a ".." component).
MountPlan plan_mounts(const std::vector<proto::Mount>& mounts, const SetupPaths& paths = {});

// Carries out SETUP: hostname, clock, entropy + reseed, mounts, then the
// guest's name in /etc/hosts and its machine-id (agent/identity.hpp). Shares are
// mounted inside `root` (the current guest root, "" for the agent's own)
// unless the request mounts a root itself. Returns the new guest root ("" when
// the request mounted none). Throws InvalidSetup for an invalid request
// (nothing changed), Error naming the step that failed otherwise.
std::string apply_setup(const proto::SetupRequest& request, const std::string& root = "", const SetupPaths& paths = {});

// The read-write shares of `request` as the agent sees them (inside `root`).
std::vector<std::string> write_through_dirs(const proto::SetupRequest& request, const std::string& root);

// Chroots this process into `dir` until destroyed ("" does nothing), so that
// paths resolve as in the guest root (its absolute symlinks included), then
// returns to the original root through a descriptor of it.
class RootScope {
 public:
  explicit RootScope(const std::string& dir);
  RootScope(const RootScope&) = delete;
  RootScope& operator=(const RootScope&) = delete;
  ~RootScope() { leave(); }

 private:
  void leave();
  UniqueFd old_root_, old_cwd_;
};

// mkdir -p with mode 0755.
void make_dirs_p(const std::string& path);

// syncfs(2) of each directory's file system: pages a program dirtied through
// a shared mapping reach the host now, not when the guest gets round to it.
void flush_dirs(const std::vector<std::string>& dirs);

}  // namespace kestrel::agent

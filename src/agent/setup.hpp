// SETUP (docs/protocol.md, "Setup"; docs/guest.md, "The guest root after
// SETUP"): the per-VM work that turns a booted (or restored) agent into the
// VM for one run. All of it happens here, never at boot, because the host may
// snapshot an agent that waits with nothing mounted and restore it many times.
#pragma once

#include <string>
#include <vector>

#include "proto/messages.hpp"

namespace kestrel::agent {

// 9p options. The root overlay's lower layer is read-only and host files do
// not change under a run, so the guest may cache freely (cache=loose);
// read-write shares write through (cache=mmap: no page cache for read/write,
// but shared mmap works) so data is on the host when the program exits.
constexpr const char* k9pBaseOptions = "trans=virtio,version=9p2000.L,msize=262144";
constexpr const char* k9pCachedOptions = "cache=loose";
constexpr const char* k9pWriteThroughOptions = "cache=mmap";

struct SetupPaths {
  std::string sysroot = "/sysroot";  // where the root overlay is mounted
  std::string mnt = "/mnt";          // holds lower/ and rw/
};

struct MountStep {
  std::string source, target, fstype, data;
  unsigned long flags = 0;
  std::vector<std::string> make_dirs;  // mkdir -p these first
  // Resolve target (and make_dirs) inside the guest root, so that symlinks
  // there (a host /home -> /data/home) lead where programs will look.
  bool in_guest_root = false;
  std::string what;  // for error messages, e.g. "9p share 'bay' at /tmp/bay"
};

struct MountPlan {
  std::vector<MountStep> steps;
  std::string root;  // the guest root for programs afterwards ("" = unchanged)
};

// The mounts of a SETUP, in the order they are made: the root overlay first
// (whatever its position in the list, so that shares land inside it), then
// the shares in order. Throws Error for an invalid request (two root
// overlays, a relative target, a NUL byte, a ".." component).
MountPlan plan_mounts(const std::vector<proto::Mount>& mounts, const SetupPaths& paths = {});

// Carries out SETUP: hostname, clock, entropy + reseed, mounts. Returns the
// guest root for programs ("" when no root overlay was mounted). Throws Error
// naming the step that failed.
std::string apply_setup(const proto::SetupRequest& request, const SetupPaths& paths = {});

// The read-write shares of `request` as the agent sees them (inside `root`).
std::vector<std::string> write_through_dirs(const proto::SetupRequest& request, const std::string& root);

// syncfs(2) of each directory's file system: pages a program dirtied through
// a shared mapping reach the host now, not when the guest gets round to it.
void flush_dirs(const std::vector<std::string>& dirs);

}  // namespace kestrel::agent

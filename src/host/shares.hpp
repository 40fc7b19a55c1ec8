// Which host directories a run shares into its VM, and where the guest
// mounts them: the host root (read-only, under a throw-away overlay), the
// configured `share`s at their own paths, and, where the guest hides the
// program's directory behind one of its own mounts (/run, /dev), that
// directory read-only. Validated here, before QEMU sees any path.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/keys.hpp"
#include "proto/messages.hpp"
#include "vm/qemu.hpp"

namespace kestrel::host {

struct SharePlan {
  std::vector<vm::Share> devices;    // QEMU's 9p devices, in boot order
  std::vector<proto::Mount> mounts;  // the guest's mounts, parents before children
};

// Throws for a share that cannot work or would hide what the guest needs:
// the root itself, the guest kernel's own /proc, /sys and /dev (or a path
// under them), a path that is not a directory, the same directory twice.
// The write-through trees (host/write_through.hpp) are shared read-write,
// except one that a share names already (the share decides) or that lies in
// a read-write share.
// Without `host_root` (an image is the guest root: docs/images.md) the host's
// root is not shared, and a program that no share or tree holds gets its
// directory shared read-only, unless it lies in the image's own system
// directories (/usr, /bin, /sbin, /lib*), where the image's program runs.
SharePlan plan_shares(const std::vector<config::Share>& shares, const std::filesystem::path& program,
                      const std::vector<std::filesystem::path>& write_trees = {}, bool host_root = true);

// Every VM has at least this many 9p devices (the root and one more), so that
// runs with no write-through tree and runs with one (most) are clones of one
// template: a template's devices must match its clones' (docs/warm-starts.md).
// Not more: each device costs a warm start milliseconds.
constexpr size_t kMinShareDevices = 2;

// Adds unused read-only devices exporting `empty_dir` up to kMinShareDevices.
// The agent never mounts them.
void pad_share_devices(std::vector<vm::Share>& devices, const std::filesystem::path& empty_dir);

// True for a program an image run takes from the image, not the host: one
// named without a directory (found in PATH in the guest) or one in the
// image's system directories (/usr, /bin, /sbin, /lib*).
bool is_image_program(const std::string& given);

// True for paths the guest mounts its own file systems over, so that the
// host's files there are not visible in the VM.
bool hidden_in_guest(const std::filesystem::path& absolute);

}  // namespace kestrel::host

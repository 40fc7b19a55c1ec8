// The initramfs kestrel boots: agent as /init, busybox, kernel modules.
// Layout and contract: docs/guest.md. Cached by content hash.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "assets/kernel.hpp"
#include "util/lockfile.hpp"

namespace kestrel::assets {

// Modules whose dependency closure goes into every initramfs and is loaded at
// boot (/lib/modules/load.order, docs/guest.md). A missing one is an error.
const std::vector<std::string>& default_modules();
// Modules a disk root needs (virtio_blk, ext4, crc32c_generic): their closure,
// less what the boot closure has, goes into every initramfs too and is loaded
// only when a SETUP mounts a disk root (/lib/modules/load.disk). One the
// kernel lacks (neither a module nor built in) is left out silently: the
// agent says what is missing when it mounts the disk.
const std::vector<std::string>& disk_modules();
// Modules a topology's NICs need (virtio_net), and dummy (the dummy0 of a VM
// without NICs, `--network none`): handled like the disk modules, listed in
// /lib/modules/load.net, which the agent loads at boot with kestrel.net=1
// or at the first NETWORK; without NICs it loads dummy.ko alone at boot.
const std::vector<std::string>& net_modules();

struct InitramfsInputs {
  std::filesystem::path agent;    // static kestrel-agent
  std::filesystem::path busybox;  // static busybox
  Kernel kernel;
  std::vector<std::string> modules = default_modules();
  std::vector<std::string> disk_modules = assets::disk_modules();
  std::vector<std::string> net_modules = assets::net_modules();
};

// Returns the path of the cached initramfs for these inputs, building it
// (atomically, safe against concurrent builders) if it is not there yet.
// The cache key is a SHA-256 over a format version and the bytes of every
// input, so any change of agent, busybox or module makes a new one.
std::filesystem::path ensure_initramfs(const InitramfsInputs& inputs);

// ensure_initramfs for a boot: also holds a shared flock on the file, which
// keeps `kestrel cache clear` from removing it until QEMU has read it (the
// caller drops `hold` once the VM has booted). docs/warm-starts.md.
struct InitramfsInUse {
  std::filesystem::path path;
  LockFile hold;
};
InitramfsInUse use_initramfs(const InitramfsInputs& inputs);

// `kestrel cache clear`: removes the cached images (and builders' temporary
// files) that no run holds; those held are kept and counted.
struct ClearedFiles {
  size_t removed = 0;
  size_t in_use = 0;
};
ClearedFiles clear_initramfs_cache();

// Locates kestrel-agent: $KESTREL_AGENT, else the first of
// agent_candidates() that is an executable file. Throws if there is none.
std::filesystem::path find_agent();
// Where find_agent looks, in order: beside the shared library this code is in
// (libkestrel.so of the C++ API; library_dir "" when it is in the program
// itself), in its build tree or its prefix's libexec/kestrel (also from a
// multiarch libdir, <prefix>/lib/<triplet>); then the same beside the running
// program (exe_dir, "" when unknown); then /usr/local and /usr's libexec/kestrel.
std::vector<std::filesystem::path> agent_candidates(const std::filesystem::path& library_dir,
                                                    const std::filesystem::path& exe_dir);
// Locates a static busybox: $KESTREL_BUSYBOX, else /bin/busybox or
// /usr/bin/busybox if statically linked. Throws naming `apt-get install
// busybox-static` if none is found.
std::filesystem::path find_busybox();

}  // namespace kestrel::assets

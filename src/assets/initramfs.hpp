// The initramfs kestrel boots: agent as /init, busybox, kernel modules.
// Layout and contract: docs/guest.md. Cached by content hash.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "assets/kernel.hpp"

namespace kestrel::assets {

// Modules whose dependency closure goes into every initramfs (docs/guest.md).
const std::vector<std::string>& default_modules();

struct InitramfsInputs {
  std::filesystem::path agent;    // static kestrel-agent
  std::filesystem::path busybox;  // static busybox
  Kernel kernel;
  std::vector<std::string> modules = default_modules();
};

// Returns the path of the cached initramfs for these inputs, building it
// (atomically, safe against concurrent builders) if it is not there yet.
// The cache key is a SHA-256 over a format version and the bytes of every
// input, so any change of agent, busybox or module makes a new one.
std::filesystem::path ensure_initramfs(const InitramfsInputs& inputs);

// Locates kestrel-agent: $KESTREL_AGENT, else next to the running kestrel
// binary, else <prefix>/libexec/kestrel/kestrel-agent. Throws if absent.
std::filesystem::path find_agent();
// Locates a static busybox: $KESTREL_BUSYBOX, else /bin/busybox or
// /usr/bin/busybox if statically linked. Throws naming `apt-get install
// busybox-static` if none is found.
std::filesystem::path find_busybox();

}  // namespace kestrel::assets

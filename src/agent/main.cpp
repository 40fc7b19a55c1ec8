// kestrel-agent: PID 1 of kestrel's initramfs (docs/guest.md). Everything
// lives in kestrel_agentlib; see agent/init.hpp.
#include <unistd.h>

#include <cstdio>
#include <string_view>

#include "agent/init.hpp"
#include "util/capped_log.hpp"

int main(int argc, char** argv) {
  if (::getpid() == 1) kestrel::agent::run_as_init();
  // On the host: copies a VM's console (stdin, a pipe from QEMU) into its
  // console.log, capped (util/capped_log.hpp). Started by kestrel with QEMU.
  if (argc == 4 && std::string_view(argv[1]) == "console-log") {
    auto max = kestrel::parse_log_max(argv[2]);
    if (!max) {
      std::fprintf(stderr, "kestrel-agent console-log: bad size %s\n", argv[2]);
      return 2;
    }
    return kestrel::copy_to_capped_log(0, argv[3], *max);
  }
  return kestrel::agent::run_standalone(argc, argv);
}

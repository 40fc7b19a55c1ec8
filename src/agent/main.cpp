// kestrel-agent: PID 1 of kestrel's initramfs (docs/guest.md). Everything
// lives in kestrel_agentlib; see agent/init.hpp.
#include <unistd.h>

#include "agent/init.hpp"

int main(int argc, char** argv) {
  if (::getpid() == 1) kestrel::agent::run_as_init();
  return kestrel::agent::run_standalone(argc, argv);
}

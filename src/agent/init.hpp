// The agent's two ways of running: as PID 1 in the guest (boot duties, then
// the virtio-serial ports for ever), or as an ordinary process serving a
// unix socket, for trying the protocol by hand on the host.
#pragma once

namespace kestrel::agent {

// Never returns: if serving becomes impossible it powers the VM off, since
// the kernel panics when init exits.
[[noreturn]] void run_as_init();

// kestrel-agent --listen PATH [--service-logs DIR]: serves connections on a
// unix socket until SIGTERM/SIGINT. SETUP is refused; SERVICE runs in our own
// root, logging to DIR (default /run/kestrel/services). Returns the exit status.
int run_standalone(int argc, char** argv);

}  // namespace kestrel::agent

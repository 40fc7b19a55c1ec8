// PID 1 duties at boot (docs/guest.md, "What the agent does at boot"):
// the pseudo file systems, the kernel command line, hostname, loopback.
// Each step logs its failure and returns: the agent serves whatever it can.
#pragma once

#include <string>
#include <string_view>

namespace kestrel::agent {

struct BootParams {
  std::string name;    // kestrel.name=
  bool debug = false;  // kestrel.debug=1
  bool net = false;    // kestrel.net=1: load load.net at boot (docs/guest.md)
};

BootParams parse_cmdline(std::string_view cmdline);

// devtmpfs /dev (+ /dev/pts, /dev/shm), proc, sysfs, tmpfs /tmp and /run.
void mount_pseudo_filesystems();
// Makes sure descriptors 0, 1 and 2 are open (the kernel leaves them closed
// when the initramfs has no /dev/console), so no pipe ever lands on them.
void ensure_std_descriptors();
// Reads /proc/cmdline; empty params on failure.
BootParams read_boot_params();
void set_hostname(std::string_view name);
void bring_up_loopback();

}  // namespace kestrel::agent

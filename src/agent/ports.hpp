// The agent's virtio-serial ports (docs/protocol.md, "Transport"): QEMU's
// port named org.kestrel.agent.K shows up as /sys/class/virtio-ports/vportNpM
// (its `name` file appears once the name is known) and as /dev/vportNpM.
// Each is opened once, non-blocking, and kept open for the VM's life.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "util/deadline.hpp"
#include "util/fd.hpp"

namespace kestrel::agent {

struct OpenPort {
  int index = -1;    // K of org.kestrel.agent.K
  std::string name;  // "org.kestrel.agent.K"
  UniqueFd fd;
};

// Port index of a virtio-serial port name: K for "org.kestrel.agent.K"
// (0 <= K < proto::kPortCount), -1 for anything else.
int port_index(std::string_view name);

class PortFinder {
 public:
  explicit PortFinder(std::string sysfs_dir = "/sys/class/virtio-ports", std::string dev_dir = "/dev")
      : sysfs_dir_(std::move(sysfs_dir)), dev_dir_(std::move(dev_dir)) {}

  // Opens the agent ports that appeared since the last call.
  std::vector<OpenPort> find_new();
  // Calls find_new() every millisecond until all proto::kPortCount ports are
  // open or the deadline passes.
  std::vector<OpenPort> wait_for_all(Deadline deadline);

  size_t found() const { return indices_.size(); }
  bool complete() const;

 private:
  std::string sysfs_dir_, dev_dir_;
  std::set<std::string> seen_;  // sysfs entries already resolved to an agent port
  std::set<int> indices_;
};

// O_RDWR | O_NONBLOCK | O_CLOEXEC, with F_SETOWN to us for SIGIO.
UniqueFd open_port(const std::string& device);
// Turns SIGIO delivery (O_ASYNC) on or off.
void set_async(int fd, bool on);

}  // namespace kestrel::agent

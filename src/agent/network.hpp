// NETWORK (docs/protocol.md, "Network"; docs/guest.md, "Network"): the
// network of one node of a topology, applied with ioctls, sysfs and procfs
// (no tool of the guest's, no netlink library).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"

namespace kestrel::agent {

// How long a NETWORK waits for its NICs after loading load.net: virtio_net
// registers them asynchronously as it probes the devices.
constexpr int kNicWaitMs = 5000;

struct NetworkPaths {
  std::string class_net = "/sys/class/net";
  std::string modules = "/lib/modules";  // holds load.net (docs/guest.md)
  std::string ip_forward = "/proc/sys/net/ipv4/ip_forward";
  int nic_wait_ms = kNicWaitMs;
};

// A NETWORK refused before it changed anything (an invalid request, too few
// NICs): later ones may still succeed.
class InvalidNetwork : public Error {
 public:
  using Error::Error;
};

// A network interface and the PCI address of its device ("0000:00:05.0").
struct NetInterface {
  std::string name;
  std::string pci;
  bool operator==(const NetInterface&) const = default;
};

// The interfaces in NIC order: by PCI address (domain, bus, device and
// function as numbers), then by name; addresses that are not PCI addresses
// ("a000000.virtio_mmio") after those that are, in text order.
std::vector<NetInterface> order_nics(std::vector<NetInterface> interfaces);

// The virtio-net interfaces under `class_net` (those whose device/driver
// links to "virtio_net"), in NIC order. The PCI address is the name of the
// directory holding the device's real path (.../0000:00:05.0/virtio3).
std::vector<NetInterface> virtio_net_interfaces(const std::string& class_net = "/sys/class/net");

// Loads the modules in `dir`/load.net once per process (at boot with
// kestrel.net=1, else on the first NETWORK). Returns the failures of that
// one time, e.g. "cannot load module virtio_net.ko: ...".
const std::vector<std::string>& load_net_modules(const std::string& dir = "/lib/modules");

// The network of a VM with no NIC (`--network none`, docs/guest.md,
// "Network"): dummy0, the dummy driver's interface, at 10.0.2.15/24 (where
// `--network user` puts its NIC) with the default route via 10.0.2.2 behind
// it. What is sent there vanishes, as on a host whose network goes nowhere:
// a connect to an address outside the VM waits for its timeout instead of
// failing at once with ENETUNREACH.
constexpr const char* kOfflineInterface = "dummy0";
constexpr uint32_t kOfflineAddress = 0x0a00020f;  // 10.0.2.15
constexpr int kOfflinePrefix = 24;
constexpr uint32_t kOfflineGateway = 0x0a000202;  // 10.0.2.2

// Loads the dummy driver (paths.modules/dummy.ko, when not built in) and
// configures dummy0 as above. Logs what fails (a kernel without the driver:
// the VM then has only lo) and returns.
void set_up_offline_network(const NetworkPaths& paths = {});
// Whether set_up_offline_network ran in this process (the VM has no NIC).
bool offline_network();

// The guest root's /etc ("" for the agent's own) as a directory fd, made if
// missing; resolved as in the guest root (an absolute symlink /etc stays
// inside it). Throws Error.
UniqueFd open_guest_etc(const std::string& root);
// Replaces /etc/`name` (under `etc`, from open_guest_etc) with a new file
// holding `data` (mode 0644): renamed over the old one, so a symlink there
// is replaced, never written through. `root` names it in messages.
void replace_etc_file(int etc, const std::string& root, const std::string& name, std::string_view data);
// /etc/`name`'s text, nullopt if there is none (a symlink is followed inside
// the guest root, "" for the agent's own). Throws Error for what is not a
// regular file or is larger than 64 KiB.
std::optional<std::string> read_etc_file(const std::string& root, const std::string& name);

// Writes request.hosts as /etc/hosts and request.resolv_conf as
// /etc/resolv.conf of `root` ("" for the agent's own), each unless empty:
// a new file (mode 0644) renamed over the old one, so a symlink there is
// replaced, never written through. Paths resolve as in the guest root
// (openat2 RESOLVE_IN_ROOT: an absolute symlink stays inside it, and no
// chroot is needed); /etc is made if missing. Throws Error.
void write_network_files(const proto::NetworkRequest& request, const std::string& root);

// Carries out NETWORK in the guest root `root` ("" for the agent's own):
// validates it, loads load.net and waits for the NICs, then configures lo,
// the NICs, the routes, forwarding and the files. Throws InvalidNetwork
// when nothing was changed, Error naming the step that failed otherwise.
void apply_network(const proto::NetworkRequest& request, const std::string& root, const NetworkPaths& paths = {});

}  // namespace kestrel::agent

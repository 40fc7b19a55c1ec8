#include "agent/network.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/ranges.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <tuple>

#include "agent/log.hpp"
#include "agent/modules.hpp"
#include "util/deadline.hpp"
#include "util/fd.hpp"
#include "util/io.hpp"
#include "util/random.hpp"

namespace kestrel::agent {

namespace {

namespace fs = std::filesystem;

// "DDDD:BB:dd.f" (hex, the function a digit) as numbers.
std::optional<std::array<uint32_t, 4>> parse_pci_address(std::string_view text) {
  std::array<uint32_t, 4> out{};
  const char separators[] = {':', ':', '.'};
  for (size_t i = 0; i < 4; ++i) {
    size_t n = 0;
    uint32_t value = 0;
    for (; n < text.size() && n < 8; ++n) {
      char c = text[n];
      int digit = (c >= '0' && c <= '9')   ? c - '0'
                  : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                           : -1;
      if (digit < 0) break;
      value = value * 16 + static_cast<uint32_t>(digit);
    }
    if (n == 0) return std::nullopt;
    out[i] = value;
    text.remove_prefix(n);
    if (i < 3) {
      if (text.empty() || text[0] != separators[i]) return std::nullopt;
      text.remove_prefix(1);
    }
  }
  if (!text.empty()) return std::nullopt;
  return out;
}

sockaddr inet_sockaddr(uint32_t address) {
  sockaddr out{};
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(address);
  static_assert(sizeof in <= sizeof out);
  std::memcpy(&out, &in, sizeof in);
  return out;
}

ifreq interface_request(const std::string& name) {
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof ifr.ifr_name - 1));
  return ifr;
}

// `what`, e.g. "eth1 (NIC 1)", for messages.
void set_up(int sock, const std::string& name, const std::string& what, bool up) {
  ifreq ifr = interface_request(name);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) fail_errno("cannot read the flags of {}", what);
  short flags = up ? static_cast<short>(ifr.ifr_flags | IFF_UP) : static_cast<short>(ifr.ifr_flags & ~IFF_UP);
  if (flags == ifr.ifr_flags) return;
  ifr.ifr_flags = flags;
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) fail_errno("cannot bring {} {}", what, up ? "up" : "down");
}

// Address and netmask (IPv4, host byte order), then up.
void set_address_and_up(int sock, const std::string& name, const std::string& what, uint32_t ip, int prefix) {
  ifreq ifr = interface_request(name);
  ifr.ifr_addr = inet_sockaddr(ip);
  if (::ioctl(sock, SIOCSIFADDR, &ifr) != 0)
    fail_errno("cannot set the address of {} to {}/{}", what, proto::format_ipv4(ip), prefix);
  ifr = interface_request(name);
  ifr.ifr_netmask = inet_sockaddr(proto::prefix_netmask(prefix));
  if (::ioctl(sock, SIOCSIFNETMASK, &ifr) != 0) fail_errno("cannot set the netmask of {} to /{}", what, prefix);
  set_up(sock, name, what, true);
}

void configure_nic(int sock, const NetInterface& iface, size_t index, const proto::NetworkRequest::Nic& nic) {
  const std::string what = fmt::format("{} (NIC {})", iface.name, index);
  proto::MacAddress mac = proto::parse_mac(nic.mac);
  ifreq ifr = interface_request(iface.name);
  if (::ioctl(sock, SIOCGIFHWADDR, &ifr) != 0) fail_errno("cannot read the MAC address of {}", what);
  if (std::memcmp(ifr.ifr_hwaddr.sa_data, mac.data(), mac.size()) != 0) {
    set_up(sock, iface.name, what, false);
    ifr = interface_request(iface.name);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    std::memcpy(ifr.ifr_hwaddr.sa_data, mac.data(), mac.size());
    if (::ioctl(sock, SIOCSIFHWADDR, &ifr) != 0) fail_errno("cannot set the MAC address of {} to {}", what, nic.mac);
  }
  set_address_and_up(sock, iface.name, what, nic.address, nic.prefix);
  debugf("network: {} is {} at {}/{}", what, nic.mac, proto::format_ipv4(nic.address), nic.prefix);
}

void add_route(int sock, const proto::NetworkRequest::Route& r) {
  rtentry rt{};
  rt.rt_dst = inet_sockaddr(r.destination);
  rt.rt_genmask = inet_sockaddr(proto::prefix_netmask(r.prefix));
  rt.rt_gateway = inet_sockaddr(r.gateway);
  rt.rt_flags = static_cast<unsigned short>(RTF_UP | RTF_GATEWAY | (r.prefix == 32 ? RTF_HOST : 0));
  if (::ioctl(sock, SIOCADDRT, &rt) == 0 || errno == EEXIST) return;
  fail_errno("cannot add the route to {}/{} via {}", proto::format_ipv4(r.destination), r.prefix,
             proto::format_ipv4(r.gateway));
}

void write_proc(const std::string& path, std::string_view value) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) fail_errno("cannot open {}", path);
  write_all(fd.get(), value, path.c_str());
}

// Waits until the VM has `count` virtio-net interfaces; InvalidNetwork if
// it does not within the time.
std::vector<NetInterface> wait_for_nics(size_t count, const NetworkPaths& paths,
                                        const std::vector<std::string>& module_failures) {
  Deadline deadline = Deadline::after(std::chrono::milliseconds(paths.nic_wait_ms));
  for (;;) {
    std::vector<NetInterface> found = virtio_net_interfaces(paths.class_net);
    if (found.size() >= count) return found;
    if (deadline.expired()) {
      std::string why = module_failures.empty() ? "" : fmt::format(" ({})", fmt::join(module_failures, "; "));
      throw InvalidNetwork(fmt::format("NETWORK asks for {} NIC{} but the VM has {} virtio-net interface{}{}", count,
                                       count == 1 ? "" : "s", found.size(), found.size() == 1 ? "" : "s", why));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// openat2(RESOLVE_IN_ROOT): `path` (relative) resolved as if `root_fd` were /.
int open_in_root(int root_fd, const char* path, uint64_t flags) {
  open_how how{};
  how.flags = flags;
  how.resolve = RESOLVE_IN_ROOT;
  return static_cast<int>(::syscall(SYS_openat2, root_fd, path, &how, sizeof how));
}

// Replaces etc/`name` under `etc` (a directory fd) with a new file holding `data`.
void replace_file(int etc, const std::string& name, std::string_view data, const std::string& shown) {
  std::string temp = "." + name + ".kestrel-" + random_hex(8);
  UniqueFd fd(::openat(etc, temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) fail_errno("cannot write {}", shown);
  try {
    write_all(fd.get(), data, shown.c_str());
    if (::fchmod(fd.get(), 0644) != 0) fail_errno("cannot chmod {}", shown);
    fd.reset();
    // rename(2) replaces a symlink at the name itself, never its target.
    if (::renameat(etc, temp.c_str(), etc, name.c_str()) != 0) fail_errno("cannot replace {}", shown);
  } catch (...) {
    ::unlinkat(etc, temp.c_str(), 0);
    throw;
  }
}

}  // namespace

std::vector<NetInterface> order_nics(std::vector<NetInterface> interfaces) {
  auto key = [](const NetInterface& i) {
    auto pci = parse_pci_address(i.pci);
    return std::make_tuple(!pci.has_value(), pci.value_or(std::array<uint32_t, 4>{}), i.pci, i.name);
  };
  std::sort(interfaces.begin(), interfaces.end(),
            [&](const NetInterface& a, const NetInterface& b) { return key(a) < key(b); });
  return interfaces;
}

std::vector<NetInterface> virtio_net_interfaces(const std::string& class_net) {
  std::vector<NetInterface> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(class_net, ec)) {
    fs::path device = entry.path() / "device";
    std::error_code e;
    fs::path driver = fs::read_symlink(device / "driver", e);
    if (e || driver.filename() != "virtio_net") continue;
    fs::path real = fs::canonical(device, e);
    if (e) continue;
    found.push_back({entry.path().filename().string(), real.parent_path().filename().string()});
  }
  return order_nics(std::move(found));
}

const std::vector<std::string>& load_net_modules(const std::string& dir) {
  static std::optional<std::vector<std::string>> failures;
  if (!failures) {
    failures = load_module_list(dir, "load.net");
    debugf("network modules loaded ({} failures)", failures->size());
  }
  return *failures;
}

UniqueFd open_guest_etc(const std::string& root) {
  const std::string dir = root.empty() ? "/" : root;
  const std::string where = root.empty() ? "" : " in " + root;
  UniqueFd root_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) fail_errno("cannot open the guest root {}", dir);
  UniqueFd etc(open_in_root(root_fd.get(), "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!etc && errno == ENOENT) {
    bool made = ::mkdirat(root_fd.get(), "etc", 0755) == 0;
    if (!made && errno != EEXIST) fail_errno("cannot create /etc{}", where);
    etc = UniqueFd(open_in_root(root_fd.get(), "etc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    // 0755 whatever the umask.
    if (etc && made && ::fchmod(etc.get(), 0755) != 0) fail_errno("cannot chmod /etc{}", where);
  }
  if (!etc) fail_errno("cannot open /etc{}", where);
  return etc;
}

void replace_etc_file(int etc, const std::string& root, const std::string& name, std::string_view data) {
  replace_file(etc, name, data, "/etc/" + name + (root.empty() ? "" : " in " + root));
}

std::optional<std::string> read_etc_file(const std::string& root, const std::string& name) {
  const std::string dir = root.empty() ? "/" : root;
  const std::string shown = "/etc/" + name + (root.empty() ? "" : " in " + root);
  UniqueFd root_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd) fail_errno("cannot open the guest root {}", dir);
  // Symlinks are followed inside the guest root, as a program would read it.
  UniqueFd fd(open_in_root(root_fd.get(), ("etc/" + name).c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd && errno == ENOENT) return std::nullopt;
  if (!fd) fail_errno("cannot open {}", shown);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail_errno("cannot stat {}", shown);
  if (!S_ISREG(st.st_mode)) fail("{} is not a regular file", shown);
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = read_some(fd.get(), buf);
    if (n < 0) fail_errno("cannot read {}", shown);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > proto::kMaxNetworkText) fail("{} is larger than {} bytes", shown, proto::kMaxNetworkText);
  }
  return text;
}

void write_network_files(const proto::NetworkRequest& request, const std::string& root) {
  if (request.hosts.empty() && request.resolv_conf.empty()) return;
  UniqueFd etc = open_guest_etc(root);
  if (!request.hosts.empty()) replace_etc_file(etc.get(), root, "hosts", request.hosts);
  if (!request.resolv_conf.empty()) replace_etc_file(etc.get(), root, "resolv.conf", request.resolv_conf);
}

namespace {
bool offline = false;
}  // namespace

bool offline_network() { return offline; }

void set_up_offline_network(const NetworkPaths& paths) {
  offline = true;
  // The dummy driver: a module carried with load.net (docs/guest.md), or
  // built in (the lean kernel). It makes dummy0 as it loads.
  std::string module = paths.modules + "/dummy.ko";
  if (UniqueFd fd(::open(module.c_str(), O_RDONLY | O_CLOEXEC)); fd) {
    if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST)
      log_errorf("cannot load module dummy.ko: {}", std::strerror(errno));
  }
  if (::access((paths.class_net + "/" + kOfflineInterface).c_str(), F_OK) != 0) {
    log_errorf(
        "no {} interface (the kernel has no dummy driver, CONFIG_DUMMY): connections to addresses "
        "outside the VM fail at once (ENETUNREACH) instead of waiting for their timeout",
        kOfflineInterface);
    return;
  }
  try {
    UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) fail_errno("socket");
    set_address_and_up(sock.get(), kOfflineInterface, kOfflineInterface, kOfflineAddress, kOfflinePrefix);
    add_route(sock.get(), {0, 0, kOfflineGateway});
    debugf("network: none ({} at {}/{}, its traffic goes nowhere)", kOfflineInterface,
           proto::format_ipv4(kOfflineAddress), kOfflinePrefix);
  } catch (const Error& e) {
    log_errorf("cannot set up the offline network on {}: {}", kOfflineInterface, e.what());
  }
}

void apply_network(const proto::NetworkRequest& request, const std::string& root, const NetworkPaths& paths) {
  try {
    request.validate();
  } catch (const Error& e) {
    throw InvalidNetwork(e.what());
  }
  std::vector<NetInterface> interfaces;
  if (!request.nics.empty()) interfaces = wait_for_nics(request.nics.size(), paths, load_net_modules(paths.modules));

  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) fail_errno("cannot configure the network: socket");
  set_up(sock.get(), "lo", "lo", true);
  for (size_t k = 0; k < request.nics.size(); ++k) configure_nic(sock.get(), interfaces[k], k, request.nics[k]);
  for (const auto& route : request.routes) add_route(sock.get(), route);
  write_proc(paths.ip_forward, request.forward ? "1\n" : "0\n");
  write_network_files(request, root);
  debugf("network: {} NICs, {} routes, forwarding {}", request.nics.size(), request.routes.size(),
         request.forward ? "on" : "off");
}

}  // namespace kestrel::agent

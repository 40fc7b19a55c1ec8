// The agent's side of NETWORK (agent/network.hpp) that needs neither root
// nor a guest: NIC order, the virtio-net interfaces of a fake sysfs,
// /etc/hosts and /etc/resolv.conf in a temporary guest root, and requests
// refused before anything changes. The ioctls themselves run in a VM only
// (tests/vm).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "agent/boot.hpp"
#include "agent/network.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::agent {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a << 24 | b << 16 | c << 8 | d; }

TEST(OrderNics, ByPciAddressAsNumbersThenByName) {
  std::vector<NetInterface> in = {
      {"eth0", "0000:00:10.0"}, {"eth1", "0000:00:0f.0"}, {"eth2", "0000:00:0A.1"},        {"eth3", "0000:00:0a.0"},
      {"eth4", "0001:00:00.0"}, {"eth5", "0000:01:00.0"}, {"eth6", "a000000.virtio_mmio"}, {"eth7", "0000:00:09.0"},
      {"eth9", "0000:00:03.0"}, {"eth8", "0000:00:03.0"},
  };
  std::vector<NetInterface> want = {
      {"eth8", "0000:00:03.0"}, {"eth9", "0000:00:03.0"},        {"eth7", "0000:00:09.0"}, {"eth3", "0000:00:0a.0"},
      {"eth2", "0000:00:0A.1"}, {"eth1", "0000:00:0f.0"},        {"eth0", "0000:00:10.0"}, {"eth5", "0000:01:00.0"},
      {"eth4", "0001:00:00.0"}, {"eth6", "a000000.virtio_mmio"},
  };
  EXPECT_EQ(order_nics(in), want);
  EXPECT_TRUE(order_nics({}).empty());
}

// A sysfs as the kernel lays it out: /sys/class/net/X/device links to the
// virtio device, under the directory of its PCI device; device/driver links
// to the driver.
class FakeSysfs {
 public:
  void add(const std::string& name, const std::string& pci_path, const std::string& driver = "virtio_net") {
    fs::path device = dir_.path() / "devices" / pci_path / ("virtio" + std::to_string(next_++));
    fs::create_directories(device);
    fs::path drivers = dir_.path() / "bus" / "virtio" / "drivers" / driver;
    fs::create_directories(drivers);
    fs::create_symlink(fs::relative(drivers, device), device / "driver");
    fs::path iface = class_net() / name;
    fs::create_directories(iface);
    fs::create_symlink(device, iface / "device");
  }
  void add_without_device(const std::string& name) { fs::create_directories(class_net() / name); }
  fs::path class_net() const { return dir_.path() / "class" / "net"; }

 private:
  TempDir dir_{"/tmp", "kestrel-sysfs-"};
  int next_ = 0;
};

TEST(VirtioNetInterfaces, OnlyVirtioNetInPciOrder) {
  FakeSysfs sys;
  sys.add_without_device("lo");
  sys.add("eth0", "pci0000:00/0000:00:05.0");
  sys.add("eth1", "pci0000:00/0000:00:03.0");
  sys.add("enp1s0", "pci0000:00/0000:00:1c.0/0000:01:00.0");  // behind a bridge
  sys.add("ens9", "pci0000:00/0000:00:09.0", "e1000");
  sys.add("eth2", "pci0000:00/0000:00:1f.0");
  EXPECT_EQ(
      virtio_net_interfaces(sys.class_net().string()),
      (std::vector<NetInterface>{
          {"eth1", "0000:00:03.0"}, {"eth0", "0000:00:05.0"}, {"eth2", "0000:00:1f.0"}, {"enp1s0", "0000:01:00.0"}}));
  EXPECT_TRUE(virtio_net_interfaces((sys.class_net() / "missing").string()).empty());
}

// ---- /etc/hosts and /etc/resolv.conf ----------------------------------------

proto::NetworkRequest names(std::string hosts, std::string resolv_conf) {
  proto::NetworkRequest n;
  n.hosts = std::move(hosts);
  n.resolv_conf = std::move(resolv_conf);
  return n;
}

mode_t mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(NetworkFiles, WrittenIntoTheGuestRootMakingEtc) {
  TempDir root("/tmp", "kestrel-guest-root-");
  mode_t umask = ::umask(077);  // the files are 0644 whatever the umask
  write_network_files(names("10.9.0.1 db\n", "nameserver 10.0.2.3\n"), root.path().string());
  ::umask(umask);
  EXPECT_EQ(read_file(root.path() / "etc/hosts"), "10.9.0.1 db\n");
  EXPECT_EQ(read_file(root.path() / "etc/resolv.conf"), "nameserver 10.0.2.3\n");
  EXPECT_EQ(mode_of(root.path() / "etc/hosts"), S_IFREG | 0644);
  EXPECT_EQ(mode_of(root.path() / "etc/resolv.conf"), S_IFREG | 0644);
  EXPECT_EQ(mode_of(root.path() / "etc") & 07777, 0755u);
  EXPECT_EQ(entries(root.path() / "etc"), (std::vector<std::string>{"hosts", "resolv.conf"}));  // no temporary left
}

TEST(NetworkFiles, SymlinksAreReplacedNotFollowed) {
  TempDir root("/tmp", "kestrel-guest-root-");
  TempDir outside("/tmp", "kestrel-outside-");
  fs::create_directories(root.path() / "etc");
  fs::create_directories(root.path() / "run/systemd/resolve");
  write_file_atomic(root.path() / "run/systemd/resolve/stub-resolv.conf", "nameserver 127.0.0.53\n");
  fs::create_symlink("../run/systemd/resolve/stub-resolv.conf", root.path() / "etc/resolv.conf");
  write_file_atomic(outside.path() / "hosts", "the host's\n");
  fs::create_symlink(outside.path() / "hosts", root.path() / "etc/hosts");  // absolute, out of the root
  write_network_files(names("10.9.0.2 app\n", "nameserver 10.0.2.3\n"), root.path().string());
  EXPECT_EQ(mode_of(root.path() / "etc/resolv.conf"), S_IFREG | 0644);
  EXPECT_EQ(read_file(root.path() / "etc/resolv.conf"), "nameserver 10.0.2.3\n");
  EXPECT_EQ(read_file(root.path() / "run/systemd/resolve/stub-resolv.conf"), "nameserver 127.0.0.53\n");
  EXPECT_EQ(mode_of(root.path() / "etc/hosts"), S_IFREG | 0644);
  EXPECT_EQ(read_file(root.path() / "etc/hosts"), "10.9.0.2 app\n");
  EXPECT_EQ(read_file(outside.path() / "hosts"), "the host's\n");
}

TEST(NetworkFiles, EtcResolvesInsideTheGuestRoot) {
  TempDir root("/tmp", "kestrel-guest-root-");
  // /etc -> /data/etc: absolute, so in the guest root it means ROOT/data/etc.
  fs::create_directories(root.path() / "data/etc");
  fs::create_symlink("/data/etc", root.path() / "etc");
  write_network_files(names("10.9.0.3 web\n", ""), root.path().string());
  EXPECT_EQ(read_file(root.path() / "data/etc/hosts"), "10.9.0.3 web\n");
  EXPECT_FALSE(fs::exists(root.path() / "data/etc/resolv.conf"));
}

TEST(NetworkFiles, EmptyTextsLeaveTheFilesAlone) {
  TempDir root("/tmp", "kestrel-guest-root-");
  write_network_files(names("", ""), root.path().string());
  EXPECT_FALSE(fs::exists(root.path() / "etc"));
  fs::create_directories(root.path() / "etc");
  write_file_atomic(root.path() / "etc/hosts", "old hosts\n");
  write_network_files(names("", "nameserver 10.0.2.3\n"), root.path().string());
  EXPECT_EQ(read_file(root.path() / "etc/hosts"), "old hosts\n");
  EXPECT_EQ(read_file(root.path() / "etc/resolv.conf"), "nameserver 10.0.2.3\n");
}

// ---- requests refused before anything changes -----------------------------

class ApplyNetwork : public ::testing::Test {
 protected:
  void SetUp() override {
    paths_.class_net = sys_.class_net().string();
    paths_.modules = (dir_.path() / "modules").string();  // no load.net: nothing to load
    paths_.ip_forward = (dir_.path() / "ip_forward").string();
    paths_.nic_wait_ms = 50;
    write_file_atomic(paths_.ip_forward, "untouched\n");
    fs::create_directories(dir_.path() / "root");
  }
  // The InvalidNetwork's message; fails the test on anything else.
  std::string refusal(const proto::NetworkRequest& request) {
    try {
      apply_network(request, (dir_.path() / "root").string(), paths_);
    } catch (const InvalidNetwork& e) {
      return e.what();
    }
    ADD_FAILURE() << "not refused";
    return "";
  }
  void expect_unchanged() {
    EXPECT_EQ(read_file(paths_.ip_forward), "untouched\n");
    EXPECT_FALSE(fs::exists(dir_.path() / "root/etc"));
  }

  TempDir dir_{"/tmp", "kestrel-network-"};
  FakeSysfs sys_;
  NetworkPaths paths_;
};

proto::NetworkRequest three_nics() {
  proto::NetworkRequest n;
  for (uint32_t i = 1; i <= 3; ++i) n.nics.push_back({fmt::format("52:54:00:00:00:0{}", i), ip(10, 42, i, 1), 24});
  n.forward = true;
  n.hosts = "10.42.1.1 me\n";
  return n;
}

TEST_F(ApplyNetwork, InvalidRequestChangesNothing) {
  proto::NetworkRequest n = three_nics();
  n.nics[2].mac = "52:54:00:00:00";
  EXPECT_EQ(
      refusal(n),
      "invalid NETWORK: NIC 2: invalid MAC address '52:54:00:00:00': expected six hex bytes separated by ':', e.g. "
      "52:54:00:0a:01:02");
  n = three_nics();
  n.nics[0].prefix = 31;
  EXPECT_EQ(refusal(n), "invalid NETWORK: NIC 0: prefix length 31 is out of range (8 to 30)");
  expect_unchanged();
}

TEST_F(ApplyNetwork, TooFewInterfacesChangesNothing) {
  sys_.add("eth0", "pci0000:00/0000:00:04.0");
  sys_.add("eth1", "pci0000:00/0000:00:05.0");
  EXPECT_EQ(refusal(three_nics()), "NETWORK asks for 3 NICs but the VM has 2 virtio-net interfaces");
  proto::NetworkRequest one;
  one.nics = {three_nics().nics[0]};
  FakeSysfs none;
  paths_.class_net = none.class_net().string();
  EXPECT_EQ(refusal(one), "NETWORK asks for 1 NIC but the VM has 0 virtio-net interfaces");
  expect_unchanged();
}

TEST(BootParams, KestrelNetLoadsTheNetworkModules) {
  EXPECT_FALSE(parse_cmdline("console=ttyS0 kestrel.name=vm").net);
  EXPECT_TRUE(parse_cmdline("console=ttyS0 kestrel.net=1 kestrel.name=vm").net);
  EXPECT_FALSE(parse_cmdline("kestrel.net=0").net);
  BootParams p = parse_cmdline("kestrel.debug=1 kestrel.net=1\n");
  EXPECT_TRUE(p.debug);
  EXPECT_TRUE(p.net);
}

}  // namespace
}  // namespace kestrel::agent

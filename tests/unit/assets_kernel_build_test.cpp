// The lean kernel's fragment, its checks and its cache key
// (assets/kernel_build.hpp); the build itself is tests/vm/t-kernel-build.sh.
#include <gtest/gtest.h>

#include "assets/initramfs.hpp"
#include "assets/kernel_build.hpp"
#include "assets/module_plan.hpp"
#include "assets_test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {
namespace {

namespace fs = std::filesystem;

TEST(Kconfig, ParsesOptionsAndSkipsTheRest) {
  auto options = parse_kconfig(
      "# a comment\n"
      "CONFIG_64BIT=y\n"
      "\n"
      "# CONFIG_MODULES is not set\n"
      "CONFIG_LOCALVERSION=\"-x\"\n"
      "CONFIG_NR_CPUS=64\n"
      "## CONFIG_NOT_AN_OPTION is a word in a comment\n"
      "CONFIG_64BIT=y\n",  // repeated with the same value: once
      "test");
  std::vector<KconfigOption> want = {{"64BIT", "y"}, {"MODULES", "n"}, {"LOCALVERSION", "\"-x\""}, {"NR_CPUS", "64"}};
  EXPECT_EQ(options, want);
}

TEST(Kconfig, RejectsContradictionsAndBrokenLines) {
  try {
    parse_kconfig("CONFIG_PVH=y\n# CONFIG_PVH is not set\n", "frag");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "frag:2: CONFIG_PVH is n here but y on line 1");
  }
  EXPECT_THROW(parse_kconfig("CONFIG_PVH\n", "frag"), Error);
  EXPECT_THROW(parse_kconfig("CONFIG_PVH=\n", "frag"), Error);
}

// An option the final .config lacks, or has otherwise, is named with what the
// build made of it; an absent option counts as "not set".
TEST(Kconfig, UnmetOptionsAreNamed) {
  auto fragment = parse_kconfig(
      "CONFIG_PVH=y\nCONFIG_9P_FS=y\n# CONFIG_MODULES is not set\nCONFIG_NR_CPUS=8\n# CONFIG_AUDIT is not set\n", "f");
  auto config = kconfig_map(
      parse_kconfig("CONFIG_PVH=y\n# CONFIG_9P_FS is not set\nCONFIG_MODULES=y\nCONFIG_NR_CPUS=64\n", ".config"));
  std::vector<std::string> want = {
      "CONFIG_9P_FS=y (the build has: not set)",
      "# CONFIG_MODULES is not set (the build has: y)",
      "CONFIG_NR_CPUS=8 (the build has: 64)",
  };
  EXPECT_EQ(unmet_options(fragment, config), want);
  EXPECT_TRUE(unmet_options(fragment, kconfig_map(fragment)).empty());
  // Absent from the .config (its menu is off): fine when "not set" was asked.
  EXPECT_EQ(unmet_options(parse_kconfig("CONFIG_X=y\n", "f"), {}),
            std::vector<std::string>{"CONFIG_X=y (the build has: not set)"});
}

TEST(LeanKey, CoversSourceCompilerAndOptionsButNotComments) {
  auto a = parse_kconfig("# one comment\nCONFIG_PVH=y\nCONFIG_SMP=y\n", "a");
  auto b = parse_kconfig("CONFIG_SMP=y\n# another comment, another order\nCONFIG_PVH=y\n", "b");
  auto c = parse_kconfig("CONFIG_SMP=y\nCONFIG_PVH=y\nCONFIG_IPV6=y\n", "c");
  std::string key = lean_key("6.1.192-2", "gcc 12.2.0", a);
  EXPECT_EQ(key.size(), 64u);
  EXPECT_EQ(lean_key("6.1.192-2", "gcc 12.2.0", b), key);
  EXPECT_NE(lean_key("6.1.192-2", "gcc 12.2.0", c), key);
  EXPECT_NE(lean_key("6.1.193-1", "gcc 12.2.0", a), key);
  EXPECT_NE(lean_key("6.1.192-2", "gcc 13.1.0", a), key);
}

TEST(LeanKey, ReleaseNamesTheUpstreamVersionAndTheKey) {
  std::string key = "0123456789abcdef" + std::string(48, '0');
  EXPECT_EQ(lean_release("6.1.192-2", key), "6.1.192-lean-01234567");
  EXPECT_EQ(lean_release("1:6.1.192-2+deb12u1", key), "6.1.192-lean-01234567");
  EXPECT_EQ(lean_release("6.1.192", key), "6.1.192-lean-01234567");
}

// The fragment compiled into kestrel parses, and carries what the guest and
// kestrel's flags depend on.
TEST(LeanFragment, HasWhatTheGuestNeeds) {
  std::vector<KconfigOption> fragment = parse_kconfig(lean_fragment(), "kernel/lean.config");
  auto options = kconfig_map(fragment);
  for (const char* name : {"64BIT",          "SMP",
                           "X86_MPPARSE",    "PVH",
                           "BLK_DEV_INITRD", "SERIAL_8250_CONSOLE",
                           "DEVTMPFS",       "MULTIUSER",
                           "PROC_SYSCTL",    "TMPFS_XATTR",
                           "UNIX98_PTYS",    "VIRTIO_PCI",
                           "VIRTIO_CONSOLE", "VIRTIO_BLK",
                           "VIRTIO_NET",     "HW_RANDOM_VIRTIO",
                           "NET_9P_VIRTIO",  "9P_FS",
                           "OVERLAY_FS",     "EXT4_FS",
                           "CRYPTO_CRC32C",  "INET",
                           "UNIX",           "BINFMT_ELF",
                           "BINFMT_SCRIPT",  "FUTEX",
                           "EPOLL",          "SECCOMP_FILTER",
                           "NAMESPACES",     "CGROUPS",
                           "FUSE_FS"}) {
    EXPECT_EQ(options[name], "y") << "CONFIG_" << name;
  }
  for (const char* name : {"MODULES", "SECURITY", "AUDIT"}) EXPECT_EQ(options[name], "n") << "CONFIG_" << name;
  EXPECT_EQ(options["DEBUG_INFO_NONE"], "y");
}

// A lean kernel's modules directory holds only modules.builtin; the module
// planner then carries no module file into the initramfs.
TEST(LeanModules, BuiltinListMeansNoModuleFiles) {
  TempDir cache("/tmp", "kestrel-cache-");
  testing::ScopedEnv env("KESTREL_CACHE_DIR", cache.path().string());
  fs::path modules = cache.path() / "modules";
  make_dirs(modules);
  std::string builtin;
  for (const char* path :
       {"kernel/drivers/virtio/virtio.ko", "kernel/drivers/virtio/virtio_ring.ko",
        "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/char/virtio_console.ko", "kernel/net/9p/9pnet.ko",
        "kernel/net/9p/9pnet_virtio.ko", "kernel/fs/9p/9p.ko", "kernel/fs/overlayfs/overlay.ko",
        "kernel/drivers/char/hw_random/virtio-rng.ko", "kernel/drivers/block/virtio_blk.ko", "kernel/fs/ext4/ext4.ko",
        "kernel/crypto/crc32c_generic.ko", "kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/dummy.ko"})
    builtin += std::string(path) + "\n";
  write_file_atomic(modules / "modules.builtin", builtin);
  EXPECT_TRUE(plan_modules(modules, default_modules()).empty());
  EXPECT_TRUE(plan_modules(modules, disk_modules()).empty());
  EXPECT_TRUE(plan_modules(modules, net_modules()).empty());
}

}  // namespace
}  // namespace kestrel::assets

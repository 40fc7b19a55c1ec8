#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>

#include "assets/initramfs.hpp"
#include "assets/kernel.hpp"
#include "assets_test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::assets {
namespace {

namespace fs = std::filesystem;
using testing::make_module;

struct CpioEntry {
  unsigned type = 0;
  unsigned perm = 0;
  std::string data;
  std::string symlink;
  unsigned rdev_major = 0, rdev_minor = 0;
};

std::map<std::string, CpioEntry> read_cpio(const fs::path& path) {
  std::map<std::string, CpioEntry> out;
  struct archive* a = archive_read_new();
  archive_read_support_format_cpio(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 65536), ARCHIVE_OK);
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    // libarchive names the newc format this way when reading.
    EXPECT_STREQ(archive_format_name(a), "ASCII cpio (SVR4 with no CRC)");
    CpioEntry c;
    c.type = archive_entry_filetype(e);
    c.perm = archive_entry_perm(e);
    if (archive_entry_symlink(e)) c.symlink = archive_entry_symlink(e);
    c.rdev_major = archive_entry_rdevmajor(e);
    c.rdev_minor = archive_entry_rdevminor(e);
    c.data.resize(static_cast<size_t>(archive_entry_size(e)));
    if (!c.data.empty()) archive_read_data(a, c.data.data(), c.data.size());
    out[archive_entry_pathname(e)] = c;
  }
  archive_read_free(a);
  return out;
}

// A static ELF executable stand-in for kestrel-agent.
std::string fake_agent(char flavour) {
  return testing::make_elf({{".text", std::string(100, flavour)}}, {{1, std::string(8, flavour)}}, 2);
}

class InitramfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    busybox_ = "/bin/busybox";
    try {
      busybox_ = find_busybox();
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
    write("agent", fake_agent('a'), 0755);
    write("modules/kernel/virtio.ko", make_module("virtio", {}));
    write("modules/kernel/virtio_ring.ko", make_module("virtio_ring", {}));
    write("modules/kernel/virtio_console.ko", make_module("virtio_console", {"virtio_ring", "virtio"}));
    write("modules/kernel/virtio-rng.ko.xz",
          testing::compress(make_module("virtio_rng", {"virtio_ring", "virtio"}), ARCHIVE_FILTER_XZ));
    write("modules/modules.builtin", "kernel/fs/overlayfs/overlay.ko\n");
  }
  void write(const std::string& rel, const std::string& bytes, mode_t mode = 0644) {
    make_dirs((dir_.path() / rel).parent_path());
    write_file_atomic(dir_.path() / rel, bytes, mode);
  }
  InitramfsInputs inputs() {
    InitramfsInputs in;
    in.agent = dir_.path() / "agent";
    in.busybox = busybox_;
    in.kernel.release = "6.1.0-99-test";
    in.kernel.modules_dir = dir_.path() / "modules";
    in.modules = {"virtio_console", "virtio-rng", "overlay"};
    return in;
  }
  TempDir dir_{"/tmp", "kestrel-initramfs-"};
  TempDir cache_{"/tmp", "kestrel-cache-"};
  testing::ScopedEnv env_{"KESTREL_CACHE_DIR", cache_.path().string()};
  fs::path busybox_;
};

TEST_F(InitramfsTest, LayoutFollowsTheGuestContract) {
  fs::path path = ensure_initramfs(inputs());
  EXPECT_EQ(path.parent_path(), cache_.path() / "initramfs");
  EXPECT_EQ(path.extension(), ".cpio");
  auto cpio = read_cpio(path);

  ASSERT_TRUE(cpio.contains("init"));
  EXPECT_EQ(cpio["init"].type, AE_IFREG);
  EXPECT_EQ(cpio["init"].perm, 0755u);
  EXPECT_EQ(cpio["init"].data, fake_agent('a'));
  EXPECT_EQ(cpio["bin/busybox"].perm, 0755u);
  EXPECT_EQ(cpio["bin/busybox"].data, read_file(busybox_));
  ASSERT_TRUE(cpio.contains("bin/sh"));
  EXPECT_EQ(cpio["bin/sh"].type, AE_IFLNK);
  EXPECT_EQ(cpio["bin/sh"].symlink, "busybox");
  EXPECT_FALSE(cpio.contains("bin/busybox/busybox"));

  for (const char* dir : {"dev", "proc", "sys", "tmp", "run", "sysroot", "mnt", "lib", "bin", "lib/modules"}) {
    ASSERT_TRUE(cpio.contains(dir)) << dir;
    EXPECT_EQ(cpio[dir].type, AE_IFDIR) << dir;
  }
  ASSERT_TRUE(cpio.contains("dev/console"));
  EXPECT_EQ(cpio["dev/console"].type, AE_IFCHR);
  EXPECT_EQ(cpio["dev/console"].rdev_major, 5u);
  EXPECT_EQ(cpio["dev/console"].rdev_minor, 1u);

  EXPECT_EQ(cpio["lib/modules/load.order"].data, "virtio_ring.ko\nvirtio.ko\nvirtio_console.ko\nvirtio_rng.ko\n");
  // Decompressed and renamed after the module.
  EXPECT_EQ(cpio["lib/modules/virtio_rng.ko"].data, make_module("virtio_rng", {"virtio_ring", "virtio"}));
  EXPECT_EQ(cpio["lib/modules/virtio_rng.ko"].perm, 0644u);
  EXPECT_FALSE(cpio.contains("lib/modules/overlay.ko"));  // built in
  // This kernel has none of the disk modules: none to load for a disk root.
  ASSERT_TRUE(cpio.contains("lib/modules/load.disk"));
  EXPECT_EQ(cpio["lib/modules/load.disk"].data, "");
  // Nor virtio_net: none to load for NICs.
  ASSERT_TRUE(cpio.contains("lib/modules/load.net"));
  EXPECT_EQ(cpio["lib/modules/load.net"].data, "");
}

// The disk modules' closure, less the boot closure and what is built in, is
// carried and listed in load.disk; load.order (boot) does not change.
TEST_F(InitramfsTest, DiskModulesAreListedApart) {
  write("modules/kernel/virtio_blk.ko", make_module("virtio_blk", {"virtio", "virtio_ring"}));
  write("modules/kernel/ext4.ko", make_module("ext4", {"mbcache", "jbd2"}));
  write("modules/kernel/jbd2.ko", make_module("jbd2", {}));
  write("modules/kernel/mbcache.ko.xz", testing::compress(make_module("mbcache", {}), ARCHIVE_FILTER_XZ));
  write("modules/modules.builtin", "kernel/fs/overlayfs/overlay.ko\nkernel/crypto/crc32c_generic.ko\n");
  InitramfsInputs in = inputs();
  EXPECT_EQ(in.disk_modules, (std::vector<std::string>{"virtio_blk", "ext4", "crc32c_generic"}));
  auto cpio = read_cpio(ensure_initramfs(in));
  EXPECT_EQ(cpio["lib/modules/load.order"].data, "virtio_ring.ko\nvirtio.ko\nvirtio_console.ko\nvirtio_rng.ko\n");
  EXPECT_EQ(cpio["lib/modules/load.disk"].data, "virtio_blk.ko\nmbcache.ko\njbd2.ko\next4.ko\n");
  EXPECT_EQ(cpio["lib/modules/load.disk"].perm, 0644u);
  EXPECT_EQ(cpio["lib/modules/ext4.ko"].data, make_module("ext4", {"mbcache", "jbd2"}));
  EXPECT_EQ(cpio["lib/modules/mbcache.ko"].data, make_module("mbcache", {}));  // decompressed
  EXPECT_FALSE(cpio.contains("lib/modules/crc32c_generic.ko"));                // built in

  // The content hash covers them: one byte of a disk module, a new image.
  fs::path before = ensure_initramfs(in);
  std::string module = make_module("jbd2", {});
  module[module.size() - 1] ^= 1;
  write("modules/kernel/jbd2.ko", module);
  EXPECT_NE(ensure_initramfs(in), before);
}

// The network modules' closure (Debian's virtio_net needs net_failover,
// which needs failover), less the boot closure, is listed in load.net; a
// module the disk needs too is carried once and listed in both.
TEST_F(InitramfsTest, NetModulesAreListedApart) {
  write("modules/kernel/virtio_net.ko", make_module("virtio_net", {"virtio_ring", "virtio", "net_failover"}));
  write("modules/kernel/net_failover.ko", make_module("net_failover", {"failover"}));
  write("modules/kernel/failover.ko.xz", testing::compress(make_module("failover", {}), ARCHIVE_FILTER_XZ));
  write("modules/kernel/virtio_blk.ko", make_module("virtio_blk", {"virtio", "virtio_ring", "failover"}));
  write("modules/kernel/drivers/net/dummy.ko", make_module("dummy", {}));
  InitramfsInputs in = inputs();
  EXPECT_EQ(in.net_modules, (std::vector<std::string>{"virtio_net", "dummy"}));
  fs::path path = ensure_initramfs(in);
  auto cpio = read_cpio(path);
  EXPECT_EQ(cpio["lib/modules/load.order"].data, "virtio_ring.ko\nvirtio.ko\nvirtio_console.ko\nvirtio_rng.ko\n");
  EXPECT_EQ(cpio["lib/modules/load.disk"].data, "failover.ko\nvirtio_blk.ko\n");
  EXPECT_EQ(cpio["lib/modules/load.net"].data, "failover.ko\nnet_failover.ko\nvirtio_net.ko\ndummy.ko\n");
  // The agent loads it by this name at boot for a VM without NICs.
  EXPECT_EQ(cpio["lib/modules/dummy.ko"].data, make_module("dummy", {}));
  EXPECT_EQ(cpio["lib/modules/load.net"].perm, 0644u);
  EXPECT_EQ(cpio["lib/modules/failover.ko"].data, make_module("failover", {}));  // decompressed
  EXPECT_EQ(cpio["lib/modules/virtio_net.ko"].data,
            make_module("virtio_net", {"virtio_ring", "virtio", "net_failover"}));

  // The content hash covers them: one byte of a network module, a new image.
  std::string module = make_module("net_failover", {"failover"});
  module[module.size() - 1] ^= 1;
  write("modules/kernel/net_failover.ko", module);
  EXPECT_NE(ensure_initramfs(in), path);
}

// A kernel without a disk module (a custom one) still gets an initramfs; the
// agent says what is missing when it mounts a disk. Runs remember the
// absence until the modules directory changes.
TEST_F(InitramfsTest, MissingDiskModuleIsLeftOut) {
  write("modules/kernel/virtio_blk.ko", make_module("virtio_blk", {"virtio", "virtio_ring"}));
  write("modules/kernel/ext4.ko", make_module("ext4", {"jbd2"}));  // jbd2 is missing: so is ext4, in effect
  InitramfsInputs in = inputs();
  auto cpio = read_cpio(ensure_initramfs(in));
  EXPECT_EQ(cpio["lib/modules/load.disk"].data, "virtio_blk.ko\n");
  EXPECT_FALSE(cpio.contains("lib/modules/ext4.ko"));
  size_t notes = 0;
  for (const auto& e : fs::directory_iterator(cache_.path() / "initramfs" / "plans"))
    notes += e.path().filename().string().starts_with("missing-");
  EXPECT_EQ(notes, 4u);  // ext4, crc32c_generic, virtio_net, dummy
  EXPECT_EQ(read_cpio(ensure_initramfs(in))["lib/modules/load.disk"].data, "virtio_blk.ko\n");

  // A module arrives (the directory changes): it is found.
  write("modules/jbd2.ko", make_module("jbd2", {}));
  cpio = read_cpio(ensure_initramfs(in));
  EXPECT_EQ(cpio["lib/modules/load.disk"].data, "virtio_blk.ko\njbd2.ko\next4.ko\n");
}

TEST_F(InitramfsTest, CachedByContent) {
  fs::path first = ensure_initramfs(inputs());
  struct stat before;
  ASSERT_EQ(::stat(first.c_str(), &before), 0);
  fs::path again = ensure_initramfs(inputs());
  EXPECT_EQ(again, first);
  struct stat after;
  ASSERT_EQ(::stat(again.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "rebuilt although nothing changed";

  // One byte of one module changes: a new archive.
  std::string module = make_module("virtio", {});
  module[module.size() - 1] ^= 1;
  write("modules/kernel/virtio.ko", module);
  fs::path changed = ensure_initramfs(inputs());
  EXPECT_NE(changed, first);

  // So does one byte of the agent.
  write("agent", fake_agent('b'), 0755);
  EXPECT_NE(ensure_initramfs(inputs()), changed);
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(cache_.path() / "initramfs"))
    EXPECT_FALSE(e.path().filename().string().starts_with(".")) << e.path();
}

// `kestrel cache clear` during runs (issue 9, item 5): an image a run holds
// (its QEMU has not read it yet) and a live builder's temporary file stay;
// what no one holds goes, and the next run builds the image again.
TEST_F(InitramfsTest, ClearKeepsWhatRunsHold) {
  InitramfsInUse used = use_initramfs(inputs());
  ASSERT_TRUE(used.hold.locked());
  fs::path dir = cache_.path() / "initramfs";
  fs::path dead_builder = dir / ".x.cpio.tmp.AAAAAA", live_builder = dir / ".y.cpio.tmp.BBBBBB";
  write_file_atomic(dead_builder, "part");
  write_file_atomic(live_builder, "part");
  LockFile writing =
      LockFile::lock_existing(live_builder, Deadline::after(std::chrono::seconds(0)), LockFile::Mode::kShared);

  ClearedFiles cleared = clear_initramfs_cache();
  EXPECT_EQ(cleared.removed, 1u);  // the dead builder's file
  EXPECT_EQ(cleared.in_use, 2u);
  EXPECT_TRUE(fs::exists(used.path));
  EXPECT_TRUE(fs::exists(live_builder));
  EXPECT_FALSE(fs::exists(dead_builder));
  // A second run uses the same image meanwhile.
  EXPECT_EQ(use_initramfs(inputs()).path, used.path);

  used.hold.unlock();
  writing.unlock();
  cleared = clear_initramfs_cache();
  EXPECT_EQ(cleared.removed, 2u);
  EXPECT_EQ(cleared.in_use, 0u);
  EXPECT_FALSE(fs::exists(used.path));
  InitramfsInUse again = use_initramfs(inputs());  // its remembered name leads nowhere now
  EXPECT_EQ(again.path, used.path);
  EXPECT_TRUE(again.hold.locked());
  EXPECT_TRUE(fs::exists(again.path));
}

TEST_F(InitramfsTest, MissingModuleIsAnError) {
  InitramfsInputs in = inputs();
  in.modules.push_back("9pnet_virtio");
  try {
    ensure_initramfs(in);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("kernel module 9pnet_virtio is not in"), std::string::npos) << e.what();
  }
}

TEST_F(InitramfsTest, KernelWithoutModules) {
  InitramfsInputs in = inputs();
  in.kernel.modules_dir.clear();
  auto cpio = read_cpio(ensure_initramfs(in));
  EXPECT_EQ(cpio["lib/modules/load.order"].data, "");
  EXPECT_EQ(cpio["lib/modules/load.disk"].data, "");
}

TEST_F(InitramfsTest, DynamicAgentIsRejected) {
  write("agent", testing::make_elf({{".text", "x"}}, {{3, "/lib64/ld-linux-x86-64.so.2"}}, 2), 0755);
  EXPECT_THROW(ensure_initramfs(inputs()), Error);
}

TEST(FindAgent, HonoursEnvironment) {
  TempDir dir("/tmp", "kestrel-agent-");
  write_file_atomic(dir.path() / "kestrel-agent", fake_agent('a'), 0755);
  {
    testing::ScopedEnv env("KESTREL_AGENT", (dir.path() / "kestrel-agent").string());
    EXPECT_EQ(find_agent(), dir.path() / "kestrel-agent");
  }
  testing::ScopedEnv env("KESTREL_AGENT", (dir.path() / "nope").string());
  EXPECT_THROW(find_agent(), Error);
}

TEST(FindAgent, LooksBesideTheApiLibraryFirst) {
  using Paths = std::vector<fs::path>;
  const Paths system = {"/usr/local/libexec/kestrel/kestrel-agent", "/usr/libexec/kestrel/kestrel-agent"};
  auto with_system = [&](Paths paths) {
    paths.insert(paths.end(), system.begin(), system.end());
    return paths;
  };
  // The kestrel command: the code is in the program, not in libkestrel.so.
  EXPECT_EQ(agent_candidates("", "/opt/k/bin"), with_system({"/opt/k/bin/kestrel-agent", "/opt/k/src/kestrel-agent",
                                                             "/opt/k/libexec/kestrel/kestrel-agent"}));
  // A test harness in its own build tree, linked to an installed libkestrel.so.
  EXPECT_EQ(
      agent_candidates("/opt/k/lib", "/home/u/t/build"),
      with_system({"/opt/k/lib/kestrel-agent", "/opt/k/libexec/kestrel/kestrel-agent", "/home/u/t/build/kestrel-agent",
                   "/home/u/t/src/kestrel-agent", "/home/u/t/libexec/kestrel/kestrel-agent"}));
  // A multiarch libdir (the .deb with prefix /usr), no program path.
  EXPECT_EQ(agent_candidates("/usr/lib/x86_64-linux-gnu", ""),
            with_system({"/usr/lib/x86_64-linux-gnu/kestrel-agent", "/usr/lib/libexec/kestrel/kestrel-agent",
                         "/usr/libexec/kestrel/kestrel-agent"}));
}

TEST(FindAgent, FindsTheBuildTreeAgent) {
  std::error_code ec;
  if (!fs::exists(KESTREL_BINARY_DIR "/src/kestrel-agent", ec)) GTEST_SKIP() << "agent not built";
  EXPECT_EQ(fs::canonical(find_agent()), fs::canonical(KESTREL_BINARY_DIR "/src/kestrel-agent"));
}

}  // namespace
}  // namespace kestrel::assets

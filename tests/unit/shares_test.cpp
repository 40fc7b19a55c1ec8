// host::plan_shares: what a run shares into its VM, validated before QEMU
// sees a path (issue: a share could hide kestrel's own mounts, a comma could
// add QEMU options).
#include "host/shares.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "util/error.hpp"
#include "util/fs.hpp"
#include "vm/qemu.hpp"

namespace kestrel {
namespace {

using host::plan_shares;
using proto::MountKind;

TEST(Shares, RootOverlayFirstThenSharesParentsBeforeChildren) {
  TempDir t("/tmp", "kestrel-shares-");
  make_dirs(t.path() / "a" / "b");
  auto plan = plan_shares({{(t.path() / "a" / "b").string(), false}, {(t.path() / "a").string(), true}}, "/bin/true");
  ASSERT_EQ(plan.mounts.size(), 3u);
  ASSERT_EQ(plan.devices.size(), 3u);
  EXPECT_EQ(plan.mounts[0].kind, MountKind::kRootOverlay);
  EXPECT_EQ(plan.devices[0].path, "/");
  EXPECT_TRUE(plan.devices[0].read_only);
  EXPECT_EQ(plan.mounts[1].target, (t.path() / "a").string());
  EXPECT_EQ(plan.mounts[1].kind, MountKind::kReadOnly);
  EXPECT_EQ(plan.mounts[2].target, (t.path() / "a" / "b").string());
  EXPECT_EQ(plan.mounts[2].kind, MountKind::kReadWrite);
  for (size_t i = 0; i < plan.mounts.size(); ++i) EXPECT_EQ(plan.mounts[i].tag, plan.devices[i].tag);
}

TEST(Shares, RefusesWhatWouldHideTheGuestsOwnMounts) {
  EXPECT_THROW(plan_shares({{"/", true}}, "/bin/true"), Error);
  EXPECT_THROW(plan_shares({{"/", false}}, "/bin/true"), Error);
  EXPECT_THROW(plan_shares({{"/proc", true}}, "/bin/true"), Error);
  EXPECT_THROW(plan_shares({{"/sys/kernel", true}}, "/bin/true"), Error);
  EXPECT_THROW(plan_shares({{"/dev", false}}, "/bin/true"), Error);
  // /tmp is an ancestor of typical runtime dirs: fine, nothing of kestrel's lives there in the guest.
  EXPECT_NO_THROW(plan_shares({{"/tmp", true}}, "/bin/true"));
}

TEST(Shares, RefusesMissingFilesAndDuplicates) {
  TempDir t("/tmp", "kestrel-shares-");
  write_file_atomic(t.path() / "f", "x");
  EXPECT_THROW(plan_shares({{(t.path() / "nope").string(), true}}, "/bin/true"), Error);
  EXPECT_THROW(plan_shares({{(t.path() / "f").string(), true}}, "/bin/true"), Error);
  EXPECT_THROW(plan_shares({{t.path().string(), true}, {t.path().string() + "/.", false}}, "/bin/true"), Error);
}

TEST(Shares, SymlinkedShareIsMountedAtItsRealPath) {
  TempDir t("/tmp", "kestrel-shares-");
  make_dirs(t.path() / "real");
  ASSERT_EQ(::symlink((t.path() / "real").c_str(), (t.path() / "link").c_str()), 0);
  auto plan = plan_shares({{(t.path() / "link").string(), false}}, "/bin/true");
  EXPECT_EQ(plan.mounts[1].target, (t.path() / "real").string());
}

TEST(Shares, CommaInASharePathReachesQemuEscaped) {
  TempDir t("/tmp", "kestrel-shares-");
  fs::path odd = t.path() / "a,readonly=off,b";
  make_dirs(odd);
  auto plan = plan_shares({{odd.string(), true}}, "/bin/true");
  vm::VmConfig c;
  c.name = "t-abc123";
  c.paths.dir = "/tmp/rt/t-abc123/t-abc123";
  c.shares = plan.devices;
  std::string fsdev;
  auto argv = vm::qemu_argv(c, "qemu-system-x86_64");
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-fsdev" && argv[i + 1].find("id=fs1") != std::string::npos) fsdev = argv[i + 1];
  EXPECT_NE(fsdev.find("path=" + t.path().string() + "/a,,readonly=off,,b,security_model"), std::string::npos) << fsdev;
  EXPECT_EQ(vm::opt_value("a,b,,c"), "a,,b,,,,c");
}

TEST(Shares, ProgramHiddenByTheGuestsRunGetsItsDirectoryReadOnly) {
  EXPECT_TRUE(host::hidden_in_guest("/run/user/1000/t"));
  EXPECT_TRUE(host::hidden_in_guest("/dev/shm/t"));
  EXPECT_FALSE(host::hidden_in_guest("/runner/t"));
  EXPECT_FALSE(host::hidden_in_guest("/tmp/t"));
  auto plan = plan_shares({}, "/run/kestrel-test/dir/prog");
  ASSERT_EQ(plan.mounts.size(), 2u);
  EXPECT_EQ(plan.mounts[1].target, "/run/kestrel-test/dir");
  EXPECT_EQ(plan.mounts[1].kind, MountKind::kReadOnly);
  EXPECT_EQ(plan_shares({}, "/usr/bin/true").mounts.size(), 1u);
  EXPECT_THROW(plan_shares({}, "/proc/self/exe"), Error);
}

}  // namespace
TEST(Shares, ImageProgramsComeFromTheImage) {
  // A bare name is looked up in the guest's PATH; system directories are the image's.
  EXPECT_TRUE(host::is_image_program("psql"));
  EXPECT_TRUE(host::is_image_program("/usr/bin/psql"));
  EXPECT_TRUE(host::is_image_program("/bin/sh"));
  EXPECT_TRUE(host::is_image_program("/usr/lib/postgresql/15/bin/postgres"));
  EXPECT_TRUE(host::is_image_program("/usr/../usr/bin/true"));
  // Anything else is the host's file, shared with the VM.
  EXPECT_FALSE(host::is_image_program("./build/pg_test"));
  EXPECT_FALSE(host::is_image_program("/tmp/x/pg_test"));
  EXPECT_FALSE(host::is_image_program("/usrx/bin/tool"));
  EXPECT_FALSE(host::is_image_program("/usr/../tmp/tool"));
}

}  // namespace kestrel

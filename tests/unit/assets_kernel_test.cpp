#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "assets/cache.hpp"
#include "assets/elf.hpp"
#include "assets/initramfs.hpp"
#include "assets/kernel.hpp"
#include "assets/kernel_store.hpp"
#include "assets_test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/lockfile.hpp"

namespace kestrel::assets {
namespace {

namespace fs = std::filesystem;
using testing::put_le;

class KernelCacheTest : public ::testing::Test {
 protected:
  // A cached kernel as fetch_debian_kernel leaves it (minus real contents).
  void add_cached(const std::string& release, bool lean = false, int64_t built = 0) {
    fs::path dir = cache_.path() / "kernels" / release;
    make_dirs(dir / "modules");
    write_file_atomic(dir / "vmlinux", testing::make_vmlinux(true));
    KernelRecord r;
    r.release = release;
    r.deb = lean ? "linux-source-6.1_6.1.192-2_all.deb" : "linux-image-" + release + "_1_amd64.deb";
    r.pvh = true;
    if (lean) {
      r.kind = "lean";
      r.key = std::string(64, 'a');
      r.built = built;
    }
    write_file_atomic(dir / "kernel.json", kernel_record_json(r));
  }
  TempDir cache_{"/tmp", "kestrel-cache-"};
  testing::ScopedEnv env_{"KESTREL_CACHE_DIR", cache_.path().string()};
};

TEST_F(KernelCacheTest, CacheDirComesFromTheEnvironment) {
  EXPECT_EQ(cache_dir(), cache_.path());
  testing::ScopedEnv unset("KESTREL_CACHE_DIR", "");
  testing::ScopedEnv xdg("XDG_CACHE_HOME", (cache_.path() / "xdg").string());
  EXPECT_EQ(cache_dir(), cache_.path() / "xdg" / "kestrel");
  EXPECT_TRUE(fs::is_directory(cache_.path() / "xdg" / "kestrel"));
}

TEST_F(KernelCacheTest, EmptyCacheNamesTheFix) {
  try {
    resolve_kernel({});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "no guest kernel in " + (cache_.path() / "kernels").string() +
                                         "; run `kestrel kernel fetch` to download Debian's (about 70 MB)");
  }
}

TEST_F(KernelCacheTest, NewestFirstAndPartialDirectoriesSkipped) {
  add_cached("6.1.0-9-amd64");
  add_cached("6.1.0-56-amd64");
  add_cached("6.1.0-10-amd64");
  make_dirs(cache_.path() / "kernels" / ".tmp-6.1.0-99-amd64-abcdef");
  make_dirs(cache_.path() / "kernels" / "6.1.0-98-amd64");  // no kernel.json: partial
  std::vector<Kernel> kernels = list_cached_kernels();
  ASSERT_EQ(kernels.size(), 3u);
  EXPECT_EQ(kernels[0].release, "6.1.0-56-amd64");
  EXPECT_EQ(kernels[1].release, "6.1.0-10-amd64");
  EXPECT_EQ(kernels[2].release, "6.1.0-9-amd64");
  EXPECT_TRUE(kernels[0].pvh);
  EXPECT_EQ(kernels[0].image, cache_.path() / "kernels" / "6.1.0-56-amd64" / "vmlinux");
  EXPECT_EQ(kernels[0].modules_dir, cache_.path() / "kernels" / "6.1.0-56-amd64" / "modules");
  EXPECT_EQ(kernels[0].source, "debian:linux-image-6.1.0-56-amd64_1_amd64.deb");

  EXPECT_EQ(resolve_kernel({}).release, "6.1.0-56-amd64");
  EXPECT_EQ(resolve_kernel({.release = "6.1.0-9-amd64"}).release, "6.1.0-9-amd64");
  try {
    resolve_kernel({.release = "5.10.0-1-amd64"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cached: 6.1.0-56-amd64, 6.1.0-10-amd64, 6.1.0-9-amd64"), std::string::npos)
        << e.what();
  }
}

// Lean kernels (`kestrel kernel build`) come after Debian's, whatever their
// version: the default stays Debian's; `lean` picks the newest version, then
// the latest built.
TEST_F(KernelCacheTest, LeanKernelsAreListedLastAndChosenByName) {
  try {
    resolve_kernel({.release = "lean"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "no lean kernel built in " + (cache_.path() / "kernels").string() +
                                         "; run `kestrel kernel build` (docs/kernels.md)");
  }
  add_cached("6.1.192-lean-00000001", true, 100);
  try {
    resolve_kernel({});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no Debian kernel in"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("`--kernel lean`"), std::string::npos) << e.what();
  }
  add_cached("6.1.0-56-amd64");
  add_cached("6.1.192-lean-00000002", true, 200);
  add_cached("6.1.190-lean-00000003", true, 300);
  std::vector<Kernel> kernels = list_cached_kernels();
  ASSERT_EQ(kernels.size(), 4u);
  EXPECT_EQ(kernels[0].release, "6.1.0-56-amd64");
  EXPECT_FALSE(kernels[0].lean);
  EXPECT_EQ(kernels[1].release, "6.1.192-lean-00000002");
  EXPECT_EQ(kernels[2].release, "6.1.192-lean-00000001");
  EXPECT_EQ(kernels[3].release, "6.1.190-lean-00000003");
  EXPECT_TRUE(kernels[1].lean);
  EXPECT_EQ(kernels[1].source, "lean:linux-source-6.1_6.1.192-2_all.deb");

  EXPECT_EQ(resolve_kernel({}).release, "6.1.0-56-amd64");
  EXPECT_EQ(resolve_kernel({.release = "lean"}).release, "6.1.192-lean-00000002");
  EXPECT_EQ(resolve_kernel({.release = "6.1.190-lean-00000003"}).release, "6.1.190-lean-00000003");

  std::optional<KernelRecord> r = read_kernel_record(cache_.path() / "kernels" / "6.1.192-lean-00000002");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, "lean");
  EXPECT_EQ(r->key, std::string(64, 'a'));
  EXPECT_EQ(r->built, 200);
}

// `kestrel kernel ls` says what selects each kernel, as resolve_kernel does.
TEST_F(KernelCacheTest, RolesNameTheDefaultAndTheLeanKernel) {
  EXPECT_TRUE(cached_kernel_roles({}).empty());
  add_cached("6.1.192-lean-00000001", true, 100);
  EXPECT_EQ(cached_kernel_roles(list_cached_kernels()), (std::vector<std::string_view>{"lean"}));
  add_cached("6.1.0-56-amd64");
  add_cached("6.1.0-10-amd64");
  add_cached("6.1.192-lean-00000002", true, 200);
  std::vector<Kernel> kernels = list_cached_kernels();
  std::vector<std::string_view> roles = cached_kernel_roles(kernels);
  ASSERT_EQ(roles.size(), 4u);
  EXPECT_EQ(roles, (std::vector<std::string_view>{"default", "", "lean", ""}));
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (roles[i].empty()) continue;
    std::string setting = roles[i] == "default" ? "" : std::string(roles[i]);
    EXPECT_EQ(resolve_kernel({.release = setting}).release, kernels[i].release) << roles[i];
  }
}

// `kestrel kernel rm`: one kernel goes; a name that is no cached kernel is an
// error naming the cached ones; a lean kernel whose build runs stays.
TEST_F(KernelCacheTest, RemoveOneKernel) {
  add_cached("6.1.0-56-amd64");
  add_cached("6.1.192-lean-00000001", true, 100);
  add_cached("6.1.192-lean-00000002", true, 200);
  fs::path kernels = cache_.path() / "kernels";
  remove_cached_kernel("6.1.192-lean-00000002");
  EXPECT_FALSE(fs::exists(kernels / "6.1.192-lean-00000002"));
  EXPECT_EQ(resolve_kernel({.release = "lean"}).release, "6.1.192-lean-00000001");
  for (std::string bad : {"6.1.192-lean-00000002", "", ".lock", "../kernels", "6.1.0-56-amd64/modules"}) {
    try {
      remove_cached_kernel(bad);
      FAIL() << "no error for '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()), "cannot remove kernel " + bad + ": it is not in " + kernels.string() +
                                           " (cached: 6.1.0-56-amd64, 6.1.192-lean-00000001)");
    }
  }
  fs::path lock_path = lean_build_lock(kernels, std::string(16, 'a'));
  EXPECT_EQ(lock_path, kernels / ".lean-aaaaaaaaaaaaaaaa.lock");
  {
    LockFile build = LockFile::try_lock(lock_path);
    ASSERT_TRUE(build.locked());
    try {
      remove_cached_kernel("6.1.192-lean-00000001");
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("a `kestrel kernel build` of it is running"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::exists(kernels / "6.1.192-lean-00000001" / "vmlinux"));
  }
  remove_cached_kernel("6.1.192-lean-00000001");
  remove_cached_kernel("6.1.0-56-amd64");
  EXPECT_TRUE(list_cached_kernels().empty());
  // Nothing moved aside is left.
  for (const fs::directory_entry& e : fs::directory_iterator(kernels))
    EXPECT_FALSE(e.path().filename().string().starts_with(".old-")) << e.path();
}

// What `kestrel kernel build`s leave: the trees and locks of dead builds go,
// those of running builds (their lock held) stay.
TEST_F(KernelCacheTest, SweepKeepsRunningBuildsOnly) {
  fs::path kernels = cache_.path() / "kernels";
  std::string running(16, '1'), dead(16, '2'), idle(16, '3');
  make_dirs(kernels / (".build-lean-" + running + "-AbC123") / "src");
  make_dirs(kernels / (".build-lean-" + dead + "-XyZ789") / "src");
  write_file_atomic(kernels / (".build-lean-" + dead + "-XyZ789") / "src" / "Makefile", "all:\n");
  write_file_atomic(lean_build_lock(kernels, dead), "");
  write_file_atomic(lean_build_lock(kernels, idle), "");
  LockFile build = LockFile::try_lock(lean_build_lock(kernels, running));
  ASSERT_TRUE(build.locked());

  KernelBuildSweep sweep = sweep_kernel_builds();
  EXPECT_EQ(sweep.builds_removed, 1u);
  EXPECT_EQ(sweep.locks_removed, 2u);
  EXPECT_EQ(sweep.running, std::vector<fs::path>{kernels / (".build-lean-" + running + "-AbC123")});
  EXPECT_TRUE(fs::exists(kernels / (".build-lean-" + running + "-AbC123") / "src"));
  EXPECT_TRUE(fs::exists(lean_build_lock(kernels, running)));
  EXPECT_FALSE(fs::exists(kernels / (".build-lean-" + dead + "-XyZ789")));
  EXPECT_FALSE(fs::exists(lean_build_lock(kernels, dead)));
  EXPECT_FALSE(fs::exists(lean_build_lock(kernels, idle)));

  // The build itself (it holds its key's lock, before it makes its tree):
  // a tree of its own key is a dead build's; its lock stays.
  KernelBuildSweep own = sweep_kernel_builds(running);
  EXPECT_EQ(own.builds_removed, 1u);
  EXPECT_TRUE(own.running.empty());
  EXPECT_TRUE(fs::exists(lean_build_lock(kernels, running)));
}

// `kestrel cache clear --kernels` while a build and a fetch run: the kernels
// go, the build's tree and lock and the fetch's files stay; once they are
// done, everything goes.
TEST_F(KernelCacheTest, ClearLeavesRunningBuildsAndFetches) {
  add_cached("6.1.0-56-amd64");
  add_cached("6.1.192-lean-00000001", true, 100);
  fs::path kernels = cache_.path() / "kernels";
  std::string key(16, 'b');
  fs::path tree = kernels / (".build-lean-" + key + "-AbC123");
  make_dirs(tree / "src");
  write_file_atomic(kernels / "lean-build-cccccccc.log", "a failed build\n");
  make_dirs(kernels / ".download-q1w2e3");
  write_file_atomic(lean_build_lock(kernels, std::string(16, 'd')), "");
  {
    LockFile build = LockFile::try_lock(lean_build_lock(kernels, key));
    LockFile fetch = LockFile::try_lock(kernels / ".lock");
    ASSERT_TRUE(build.locked() && fetch.locked());
    ClearedKernels cleared = clear_kernel_cache();
    EXPECT_EQ(cleared.removed, 2u);
    EXPECT_TRUE(cleared.fetch_running);
    EXPECT_FALSE(cleared.linked);
    EXPECT_EQ(cleared.builds.running, std::vector<fs::path>{tree});
    EXPECT_EQ(cleared.builds.locks_removed, 1u);
    EXPECT_TRUE(list_cached_kernels().empty());
    EXPECT_FALSE(fs::exists(kernels / "lean-build-cccccccc.log"));
    EXPECT_TRUE(fs::exists(tree / "src"));
    EXPECT_TRUE(fs::exists(lean_build_lock(kernels, key)));
    EXPECT_TRUE(fs::exists(kernels / ".lock"));
    EXPECT_TRUE(fs::exists(kernels / ".download-q1w2e3"));
  }
  ClearedKernels cleared = clear_kernel_cache();
  EXPECT_EQ(cleared.removed, 0u);
  EXPECT_FALSE(cleared.fetch_running);
  EXPECT_EQ(cleared.builds.builds_removed, 1u);
  EXPECT_TRUE(cleared.builds.running.empty());
  EXPECT_FALSE(fs::exists(kernels));
  EXPECT_EQ(clear_kernel_cache().removed, 0u);  // nothing there: nothing to do
}

// Tests share the user's kernels through a link (tests/vm/lib.sh,
// use_own_cache): clearing removes the link, never what it leads to.
TEST_F(KernelCacheTest, ClearRemovesALinkOnly) {
  TempDir other("/tmp", "kestrel-other-cache-");
  add_cached("6.1.0-56-amd64");
  fs::path real = cache_.path() / "kernels";
  fs::create_directory_symlink(real, other.path() / "kernels");
  testing::ScopedEnv env("KESTREL_CACHE_DIR", other.path().string());
  ClearedKernels cleared = clear_kernel_cache();
  EXPECT_TRUE(cleared.linked);
  EXPECT_FALSE(fs::exists(fs::symlink_status(other.path() / "kernels")));
  EXPECT_TRUE(fs::exists(real / "6.1.0-56-amd64" / "vmlinux"));
}

// A user's bzImage: its ELF kernel is extracted once into the cache.
TEST_F(KernelCacheTest, UserBzImageBootsThroughExtractedVmlinux) {
  std::string vmlinux = testing::make_vmlinux(true, 50000);
  std::string payload = testing::compress(vmlinux, ARCHIVE_FILTER_XZ);
  put_le(payload, payload.size(), vmlinux.size(), 4);
  std::string image(2048, '\0');
  image[0x1f1] = 3;
  image.replace(0x202, 4, "HdrS");
  put_le(image, 0x206, 0x020f, 2);
  put_le(image, 0x248, 0, 4);
  put_le(image, 0x24c, payload.size(), 4);
  image += payload;
  fs::path bz = cache_.path() / "bzImage";
  write_file_atomic(bz, image);

  Kernel k = resolve_kernel({.image = bz});
  EXPECT_TRUE(k.pvh);
  EXPECT_EQ(k.source, "user");
  EXPECT_EQ(k.image.parent_path(), cache_.path() / "user-kernels");
  EXPECT_EQ(read_file(k.image), vmlinux);
  EXPECT_EQ(k.release, "6.1.0-99-test");  // from the banner, since the header has none
  EXPECT_TRUE(k.modules_dir.empty());
  EXPECT_EQ(resolve_kernel({.image = bz}).image, k.image);  // cached
}

TEST_F(KernelCacheTest, UserVmlinuxWithoutPvhIsRejected) {
  write_file_atomic(cache_.path() / "vmlinux", testing::make_vmlinux(false));
  EXPECT_THROW(resolve_kernel({.image = cache_.path() / "vmlinux"}), Error);
  write_file_atomic(cache_.path() / "pvh", testing::make_vmlinux(true));
  Kernel k = resolve_kernel({.image = cache_.path() / "pvh", .modules_dir = cache_.path()});
  EXPECT_TRUE(k.pvh);
  EXPECT_EQ(k.image, cache_.path() / "pvh");
  EXPECT_EQ(k.modules_dir, cache_.path());
  EXPECT_THROW(resolve_kernel({.modules_dir = cache_.path()}), Error);
}

}  // namespace
}  // namespace kestrel::assets

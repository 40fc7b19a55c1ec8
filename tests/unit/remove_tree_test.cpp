// remove_tree_one_fs: the removal under every deployment teardown. A tree a
// guest made hostile (chmod 000, symlinks out, very deep, a mount inside)
// is removed where it may be, and nothing outside it is touched.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel {
namespace {

// Runs `body` as an unprivileged user (nobody) in a child process when we are
// root: root needs no permission bits, so only a user shows the chmod 000
// case. Returns the child's exit status (0: every check passed).
int as_user(const std::function<int()>& body) {
  if (::geteuid() != 0) return body();
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 99;
    try {
      if (::setgid(65534) == 0 && ::setuid(65534) == 0) rc = body();
    } catch (...) {
      rc = 98;
    }
    ::_exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 97;
}

// Item 7: a `chmod 000` directory (and a 0500 one) left by a guest does not
// make the tree unremovable for the user who owns it.
TEST(RemoveTree, RemovesChmod000DirectoriesOfOurs) {
  TempDir parent("/tmp", "kestrel-unit-rm-");
  ::chmod(parent.path().c_str(), 0777);
  int rc = as_user([&] {
    fs::path top = parent.path() / "deployment";
    fs::create_directories(top / "bay" / "locked" / "inner");
    write_file_atomic(top / "bay" / "locked" / "inner" / "f", "x");
    fs::create_directories(top / "bay" / "readonly");
    write_file_atomic(top / "bay" / "readonly" / "g", "x");
    if (::chmod((top / "bay" / "locked" / "inner").c_str(), 0) != 0) return 1;
    if (::chmod((top / "bay" / "locked").c_str(), 0) != 0) return 2;
    if (::chmod((top / "bay" / "readonly").c_str(), 0500) != 0) return 3;
    // What gc did before: fs::remove_all fails here.
    std::error_code ec;
    fs::remove_all(top, ec);
    if (!ec) return 4;
    remove_tree_one_fs(top);
    return fs::exists(top) ? 5 : 0;
  });
  EXPECT_EQ(rc, 0);
}

TEST(RemoveTree, NeverFollowsSymlinksAndIsFineWithAMissingPath) {
  TempDir outside("/tmp", "kestrel-unit-outside-");
  write_file_atomic(outside.path() / "keep", "x");
  fs::create_directories(outside.path() / "dir");
  TempDir work("/tmp", "kestrel-unit-rm-");
  fs::path top = work.path() / "t";
  fs::create_directories(top / "a");
  fs::create_directory_symlink(outside.path(), top / "a" / "to-dir");
  fs::create_symlink(outside.path() / "keep", top / "to-file");
  ::chmod((outside.path() / "dir").c_str(), 0);  // would be "fixed" if followed
  remove_tree_one_fs(top);
  EXPECT_FALSE(fs::exists(top));
  EXPECT_TRUE(fs::exists(outside.path() / "keep"));
  struct stat st;
  ASSERT_EQ(::stat((outside.path() / "dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0u);
  ::chmod((outside.path() / "dir").c_str(), 0700);
  EXPECT_NO_THROW(remove_tree_one_fs(top));  // gone: fine
  // A symlink given as the path itself: the link goes, not its target.
  fs::create_directory_symlink(outside.path(), work.path() / "link");
  remove_tree_one_fs(work.path() / "link");
  EXPECT_FALSE(fs::is_symlink(work.path() / "link"));
  EXPECT_TRUE(fs::exists(outside.path() / "keep"));
}

// Bounded: a tree deeper than the fd limit is removed with a few fds.
TEST(RemoveTree, RemovesVeryDeepTreesWithFewFds) {
  TempDir work("/tmp", "kestrel-unit-rm-");
  fs::path top = work.path() / "deep";
  fs::create_directory(top);
  int fd = ::open(top.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 400; ++i) {
    ASSERT_EQ(::mkdirat(fd, "d", 0700), 0);
    int next = ::openat(fd, "d", O_RDONLY | O_DIRECTORY);
    ::close(fd);
    ASSERT_GE(next, 0);
    fd = next;
  }
  ::close(fd);
  // 400 levels with at most 64 fds open (fs::remove_all needs one per level).
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  struct rlimit low = {64, old.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::error_code ec;
  fs::remove_all(top, ec);
  EXPECT_TRUE(ec) << "fs::remove_all managed with 64 fds: the test proves nothing";
  EXPECT_NO_THROW(remove_tree_one_fs(top));
  ::setrlimit(RLIMIT_NOFILE, &old);
  EXPECT_FALSE(fs::exists(top));
}

// One file system: a mount inside is not crossed (nor is anything under it removed).
TEST(RemoveTree, DoesNotCrossAMountPoint) {
  TempDir work("/tmp", "kestrel-unit-rm-");
  fs::path top = work.path() / "t";
  fs::create_directories(top / "mnt");
  if (::mount("kestrel-test", (top / "mnt").c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  write_file_atomic(top / "mnt" / "other-fs", "x");
  EXPECT_THROW(remove_tree_one_fs(top), Error);
  EXPECT_TRUE(fs::exists(top / "mnt" / "other-fs"));
  ::umount2((top / "mnt").c_str(), MNT_DETACH);
  remove_tree_one_fs(top);
  EXPECT_FALSE(fs::exists(top));
}

}  // namespace
}  // namespace kestrel

// A recipe's `files` copied into an image's tree: never out of it through a
// link, whoever made the link; a source link gives what the digest hashed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "image/copy_in.hpp"
#include "image/recipe.hpp"
#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::image {
namespace {

class CopyInTest : public ::testing::Test {
 protected:
  TempDir tmp{"/tmp", "kestrel-copy-in-test-"};
  fs::path tree = tmp.path() / "tree";
  fs::path src = tmp.path() / "src";
  fs::path outside = tmp.path() / "outside";  // stands for a host directory

  void SetUp() override {
    make_dirs(tree / "etc");
    make_dirs(src);
    make_dirs(outside);
  }
  std::string copy_error(const fs::path& from, const std::string& to) {
    return test::error_message([&] { copy_into_tree(tree, from, to); });
  }
  bool outside_is_empty() const { return fs::is_empty(outside); }
};

// The case of the report: a first entry copies a directory holding a link to
// a host directory; a second entry's target goes through that link.
TEST_F(CopyInTest, ALinkAnEarlierCopyMadeLeadsNowhere) {
  make_dirs(src / "d");
  fs::create_directory_symlink(outside, src / "d" / "escape");
  write_file_atomic(src / "payload", "pwned\n");
  copy_into_tree(tree, src / "d", "/opt/d");
  EXPECT_TRUE(fs::is_symlink(tree / "opt/d/escape"));  // a link in the image, as the digest has it
  std::string message = copy_error(src / "payload", "/opt/d/escape/pwn");
  EXPECT_NE(message.find("/opt/d/escape is a symbolic link in the image"), std::string::npos) << message;
  EXPECT_TRUE(outside_is_empty());
  // Nor as the last part of the target, nor with a directory's contents.
  EXPECT_NE(copy_error(src / "payload", "/opt/d/escape").find("symbolic link"), std::string::npos);
  make_dirs(src / "tree-of" / "escape");
  write_file_atomic(src / "tree-of" / "escape" / "pwn", "pwned\n");
  EXPECT_NE(copy_error(src / "tree-of", "/opt/d").find("/opt/d/escape is a symbolic link"), std::string::npos);
  EXPECT_TRUE(outside_is_empty());
}

// An unprivileged build copies as its user (the tree is its own): the same
// walk, the same refusal.
TEST_F(CopyInTest, AsAnUnprivilegedUserToo) {
  make_dirs(src / "d");
  fs::create_directory_symlink(outside, src / "d" / "escape");
  write_file_atomic(src / "payload", "pwned\n");
  if (::geteuid() == 0) {
    for (const auto& p : {tmp.path(), tree, tree / "etc", src, src / "d", src / "payload", outside})
      ASSERT_EQ(::lchown(p.c_str(), 65534, 65534), 0) << p;
    ASSERT_EQ(::lchown((src / "d" / "escape").c_str(), 65534, 65534), 0);
  }
  std::string message = test::as_unprivileged([&] {
    copy_into_tree(tree, src / "d", "/opt/d");
    return test::error_message([&] { copy_into_tree(tree, src / "payload", "/opt/d/escape/pwn"); });
  });
  EXPECT_NE(message.find("/opt/d/escape is a symbolic link in the image"), std::string::npos) << message;
  EXPECT_TRUE(outside_is_empty());
}

TEST_F(CopyInTest, RelativeAndPackageLinksLeadNowhereEither) {
  fs::create_directory_symlink("../../outside", tree / "etc" / "up");  // relative, out of the tree
  fs::create_directory_symlink("/run", tree / "var-run");              // as /var/run -> /run
  write_file_atomic(src / "f", "x\n");
  EXPECT_NE(copy_error(src / "f", "/etc/up/f").find("/etc/up is a symbolic link"), std::string::npos);
  EXPECT_NE(copy_error(src / "f", "/var-run/f").find("/var-run is a symbolic link"), std::string::npos);
  EXPECT_TRUE(outside_is_empty());
}

TEST_F(CopyInTest, ASourceLinkGivesWhatItNames) {
  write_file_atomic(src / "real.conf", "port = 5\n", 0640);
  fs::create_symlink(src / "real.conf", src / "link.conf");
  copy_into_tree(tree, src / "link.conf", "/etc/app.conf");
  struct stat st {};
  ASSERT_EQ(::lstat((tree / "etc/app.conf").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(read_file(tree / "etc/app.conf"), "port = 5\n");
  // A linked directory: its entries.
  make_dirs(src / "real-dir");
  write_file_atomic(src / "real-dir" / "a", "a\n");
  fs::create_directory_symlink(src / "real-dir", src / "dir-link");
  copy_into_tree(tree, src / "dir-link", "/srv/data");
  EXPECT_FALSE(fs::is_symlink(tree / "srv/data"));
  EXPECT_EQ(read_file(tree / "srv/data/a"), "a\n");
}

// The key and the image agree: a source link hashes as what it names, and
// that is what the image gets.
TEST_F(CopyInTest, TheDigestHashesWhatTheImageGets) {
  write_file_atomic(src / "real.conf", "port = 5\n", 0644);
  fs::create_symlink(src / "real.conf", src / "link.conf");
  fs::path os_release = tmp.path() / "os-release";
  write_file_atomic(os_release, "ID=debian\nVERSION_CODENAME=bookworm\n");
  auto digest_of = [&](const std::string& source) {
    return recipe_digest(parse_recipe("[files]\n\"" + source + "\" = \"/etc/app.conf\"\n", src / "r.toml", os_release));
  };
  EXPECT_EQ(digest_of("link.conf"), digest_of("real.conf"));
  write_file_atomic(src / "real.conf", "port = 6\n", 0644);
  std::string changed = digest_of("link.conf");
  copy_into_tree(tree, src / "link.conf", "/etc/app.conf");
  EXPECT_EQ(read_file(tree / "etc/app.conf"), "port = 6\n");
  EXPECT_EQ(changed, digest_of("real.conf"));
}

// A source under /proc or /sys (made up as it is read; /proc/kmsg would block
// and take the host's kernel messages) is refused at its line.
TEST_F(CopyInTest, KernelFileSystemsAreNoSource) {
  fs::path os_release = tmp.path() / "os-release";
  write_file_atomic(os_release, "ID=debian\nVERSION_CODENAME=bookworm\n");
  fs::path recipe = src / "r.toml";
  for (const char* source : {"/proc/self/status", "/proc/self", "/sys/kernel"}) {
    std::string message = test::error_message([&] {
      parse_recipe(std::string("size = \"512M\"\n[files]\n\"") + source + "\" = \"/x\"\n", recipe, os_release);
    });
    EXPECT_TRUE(message.starts_with(recipe.string() + ":3: files: " + source + " is on ")) << message;
    EXPECT_NE(message.find("a file system the kernel makes up as it is read"), std::string::npos) << message;
  }
}

TEST_F(CopyInTest, FilesOverwriteInPlaceAndKindsAreKept) {
  write_file_atomic(tree / "etc" / "motd", "old, and longer than the new\n", 0644);
  write_file_atomic(src / "motd", "new\n", 0600);
  copy_into_tree(tree, src / "motd", "/etc/motd");
  EXPECT_EQ(read_file(tree / "etc/motd"), "new\n");
  EXPECT_EQ(fs::status(tree / "etc/motd").permissions(), fs::perms::owner_read | fs::perms::owner_write);
  // A file over a directory, a directory over a file: refused, said plainly.
  EXPECT_NE(copy_error(src / "motd", "/etc").find("/etc is a directory in the image"), std::string::npos);
  make_dirs(src / "dir");
  EXPECT_NE(copy_error(src / "dir", "/etc/motd").find("/etc/motd is a file in the image, not a directory"),
            std::string::npos);
}

TEST_F(CopyInTest, DirectoriesMergeWithTheirLinksAndModes) {
  make_dirs(src / "conf" / "sub");
  write_file_atomic(src / "conf" / "sub" / "x", "x\n", 0755);
  fs::create_symlink("sub/x", src / "conf" / "x-link");
  ::chmod((src / "conf").c_str(), 0750);
  write_file_atomic(tree / "etc" / "kept", "kept\n");
  copy_into_tree(tree, src / "conf", "/etc");
  EXPECT_EQ(read_file(tree / "etc/kept"), "kept\n");
  EXPECT_EQ(read_file(tree / "etc/sub/x"), "x\n");
  EXPECT_EQ(fs::read_symlink(tree / "etc/x-link"), "sub/x");
  EXPECT_EQ(fs::status(tree / "etc").permissions() & fs::perms::all, static_cast<fs::perms>(0750));
  // Copied again: the link is replaced by the same link, nothing doubles.
  copy_into_tree(tree, src / "conf", "/etc");
  EXPECT_EQ(fs::read_symlink(tree / "etc/x-link"), "sub/x");
}

TEST_F(CopyInTest, SpecialFilesAreRefused) {
  make_dirs(src / "d");
  ASSERT_EQ(::mkfifo((src / "d" / "fifo").c_str(), 0600), 0);
  std::string message = copy_error(src / "d", "/srv/d");
  EXPECT_NE(message.find((src / "d" / "fifo").string() + " is a special file"), std::string::npos) << message;
  // A fifo named as the source itself does not block the copy.
  EXPECT_NE(copy_error(src / "d" / "fifo", "/srv/f").find("neither a regular file nor a directory"), std::string::npos);
}

}  // namespace
}  // namespace kestrel::image

// host::plan_write_through: which host directories a run's writes reach
// (issue: coverage profiles, reports and artifacts vanished with the VM),
// and which it must never reach (system directories, $HOME, /tmp itself).
#include "host/write_through.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include "config/keys.hpp"
#include "host/shares.hpp"
#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel {
namespace {

using host::plan_write_through;
using host::write_refusal;

void touch(const fs::path& p) { write_file_atomic(p, ""); }

std::vector<fs::path> trees(const host::WritePlan& plan) {
  std::vector<fs::path> out;
  for (const auto& t : plan.trees) out.push_back(t.path);
  return out;
}

// The program, when given, is created (plan_write_through resolves it).
host::WriteInputs inputs(const fs::path& cwd, std::optional<fs::path> program = std::nullopt,
                         std::vector<std::string> setting = {"auto"}) {
  if (program && !fs::exists(*program)) touch(*program);
  return {std::move(setting), "test", cwd, std::move(program), "/nonexistent-home"};
}

struct WriteThrough : ::testing::Test {
  TempDir t{"/tmp", "kestrel-write-"};
  fs::path root = fs::canonical(t.path());
};

TEST_F(WriteThrough, ProjectIsTheNearestAncestorWithGitOrKestrelToml) {
  make_dirs(root / "proj" / ".git");
  make_dirs(root / "proj" / "sub" / "deeper");
  auto plan = plan_write_through(inputs(root / "proj" / "sub" / "deeper"));
  ASSERT_EQ(trees(plan), std::vector<fs::path>{root / "proj"});
  EXPECT_NE(plan.trees[0].why.find(".git"), std::string::npos);

  // kestrel.toml marks a project too, and the nearest marker wins.
  touch(root / "proj" / "sub" / "kestrel.toml");
  plan = plan_write_through(inputs(root / "proj" / "sub" / "deeper"));
  EXPECT_EQ(trees(plan), std::vector<fs::path>{root / "proj" / "sub"});
  // A .git file (a worktree or submodule) counts as well.
  make_dirs(root / "wt" / "x");
  touch(root / "wt" / ".git");
  EXPECT_EQ(trees(plan_write_through(inputs(root / "wt" / "x"))), std::vector<fs::path>{root / "wt"});
}

TEST_F(WriteThrough, WithoutAProjectTheWorkingDirectory) {
  make_dirs(root / "plain");
  auto plan = plan_write_through(inputs(root / "plain"));
  ASSERT_EQ(trees(plan), std::vector<fs::path>{root / "plain"});
  EXPECT_EQ(plan.trees[0].why, "working directory");
}

TEST_F(WriteThrough, AProjectThatIsTheHomeFallsBackToTheWorkingDirectory) {
  // A dotfiles repository makes $HOME a "project": never written through.
  fs::path home = root / "home";
  make_dirs(home / ".git");
  make_dirs(home / "scratch");
  auto in = inputs(home / "scratch");
  in.home = home;
  auto plan = plan_write_through(in);
  EXPECT_EQ(trees(plan), std::vector<fs::path>{home / "scratch"});
  ASSERT_EQ(plan.refused.size(), 1u);
  EXPECT_EQ(plan.refused[0].path, home);
  // Run from $HOME itself: nothing at all.
  in.cwd = home;
  plan = plan_write_through(in);
  EXPECT_TRUE(plan.trees.empty());
}

TEST_F(WriteThrough, BuildTreesOfTestRunners) {
  make_dirs(root / "cwd");
  // CMake: the build tree's root, wherever the binary lies in it.
  make_dirs(root / "build" / "tests" / "unit");
  touch(root / "build" / "CMakeCache.txt");
  auto plan = plan_write_through(inputs(root / "cwd", root / "build" / "tests" / "unit" / "t"));
  EXPECT_EQ(trees(plan), (std::vector<fs::path>{root / "cwd", root / "build"}));
  // cargo: the target directory (it holds CACHEDIR.TAG).
  make_dirs(root / "target" / "debug" / "deps");
  touch(root / "target" / "CACHEDIR.TAG");
  plan = plan_write_through(inputs(root / "cwd", root / "target" / "debug" / "deps" / "crate-0123abcd"));
  EXPECT_EQ(trees(plan), (std::vector<fs::path>{root / "cwd", root / "target"}));
  // go: the package's directory in the go tool's work directory.
  make_dirs(root / "go-build123" / "b001");
  plan = plan_write_through(inputs(root / "cwd", root / "go-build123" / "b001" / "pkg.test"));
  EXPECT_EQ(trees(plan), (std::vector<fs::path>{root / "cwd", root / "go-build123" / "b001"}));
  // Anything else: the program's directory stays read-only.
  make_dirs(root / "bin");
  plan = plan_write_through(inputs(root / "cwd", root / "bin" / "tool"));
  EXPECT_EQ(trees(plan), std::vector<fs::path>{root / "cwd"});
  make_dirs(root / "go-buildX" / "b001");
  plan = plan_write_through(inputs(root / "cwd", root / "go-buildX" / "b001" / "pkg.test"));
  EXPECT_EQ(trees(plan), std::vector<fs::path>{root / "cwd"});
}

TEST_F(WriteThrough, ATreeInsideAnotherIsCoveredByIt) {
  make_dirs(root / "proj" / ".git");
  make_dirs(root / "proj" / "target" / "debug" / "deps");
  touch(root / "proj" / "target" / "CACHEDIR.TAG");
  auto plan = plan_write_through(inputs(root / "proj", root / "proj" / "target" / "debug" / "deps" / "t"));
  EXPECT_EQ(trees(plan), std::vector<fs::path>{root / "proj"});
  // A configured parent replaces the trees inside it.
  plan = plan_write_through(inputs(root / "proj", std::nullopt, {"auto", root.string()}));
  EXPECT_EQ(trees(plan), std::vector<fs::path>{root});
}

TEST_F(WriteThrough, SystemAndSharedDirectoriesAreNeverWrittenThrough) {
  for (const char* dir : {"/", "/usr", "/usr/bin", "/etc", "/bin", "/lib", "/boot", "/var", "/var/lib", "/opt", "/tmp",
                          "/var/tmp", "/home", "/home/someone", "/root", "/proc", "/dev/shm", "/run"})
    EXPECT_NE(write_refusal(dir, "/nonexistent-home"), "") << dir;
  // A program in /usr/bin run from /etc: no tree at all.
  auto plan = plan_write_through(inputs("/etc", "/usr/bin/env"));
  EXPECT_TRUE(plan.trees.empty());
  EXPECT_FALSE(plan.refused.empty());
  // Below /tmp and /var/tmp is someone's work (go builds in /tmp/go-build*).
  EXPECT_EQ(write_refusal(root, "/nonexistent-home"), "");
  TempDir var_tmp("/var/tmp", "kestrel-write-");
  EXPECT_EQ(write_refusal(fs::canonical(var_tmp.path()), "/nonexistent-home"), "");
  // The home directory and its ancestors are not; below it is.
  make_dirs(root / "home" / "u" / "proj");
  EXPECT_NE(write_refusal(root / "home" / "u", root / "home" / "u"), "");
  EXPECT_NE(write_refusal(root / "home", root / "home" / "u"), "");
  EXPECT_EQ(write_refusal(root / "home" / "u" / "proj", root / "home" / "u"), "");
  // Not a directory.
  touch(root / "file");
  EXPECT_NE(write_refusal(root / "file", "/nonexistent-home"), "");
}

TEST_F(WriteThrough, UnwritableDirectoriesAreRefused) {
  // Root writes anywhere: as root, the check runs as an unprivileged user.
  make_dirs(root / "ro");
  make_dirs(root / "rw");
  fs::permissions(root, fs::perms::all);
  fs::permissions(root / "ro", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(root / "rw", fs::perms::all);
  std::string refusals = test::as_unprivileged([&] {
    return write_refusal(root / "ro", "/nonexistent-home") + "|" + write_refusal(root / "rw", "/nonexistent-home");
  });
  fs::permissions(root / "ro", fs::perms::owner_all);
  EXPECT_EQ(refusals, "not writable by you (Permission denied)|");
}

TEST_F(WriteThrough, ConfiguredPathsMustBeUsable) {
  make_dirs(root / "cwd");
  make_dirs(root / "out");
  auto plan = plan_write_through(inputs(root / "cwd", std::nullopt, {(root / "out").string()}));
  EXPECT_EQ(trees(plan), std::vector<fs::path>{root / "out"});  // no auto: only what was named
  try {
    plan_write_through(inputs(root / "cwd", std::nullopt, {(root / "missing").string()}));
    FAIL() << "a missing path was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test"), std::string::npos) << e.what();  // the origin
  }
  EXPECT_THROW(plan_write_through(inputs(root / "cwd", std::nullopt, {"/etc"})), Error);
  // Strict isolation: nothing.
  EXPECT_TRUE(plan_write_through(inputs(root / "cwd", std::nullopt, {})).trees.empty());
}

TEST_F(WriteThrough, SymlinkedPathsAreResolved) {
  make_dirs(root / "real" / ".git");
  fs::create_directory_symlink(root / "real", root / "link");
  EXPECT_EQ(trees(plan_write_through(inputs(root / "link"))), std::vector<fs::path>{root / "real"});
  // A link into a system directory is refused as that directory.
  fs::create_directory_symlink("/etc", root / "etc-link");
  EXPECT_THROW(plan_write_through(inputs(root, std::nullopt, {(root / "etc-link").string()})), Error);
}

TEST(WriteThroughConfig, SettingValues) {
  const config::Key& key = *config::find_key("write_through");
  auto list = [&](const char* text) {
    return std::get<std::vector<std::string>>(config::parse_text(key, text, "/base"));
  };
  EXPECT_EQ(list("auto"), std::vector<std::string>{"auto"});
  EXPECT_EQ(list("auto, out"), (std::vector<std::string>{"auto", "/base/out"}));
  EXPECT_EQ(list("none"), std::vector<std::string>{"none"});
  EXPECT_THROW(list("none,auto"), Error);
  EXPECT_THROW(list("/"), Error);
  EXPECT_THROW(list("sub/../.."), Error);  // the root, spelled otherwise
}

TEST(WriteThroughShares, TreesAreReadWriteSharesUnlessAShareSaysOtherwise) {
  TempDir t("/tmp", "kestrel-write-");
  fs::path root = fs::canonical(t.path());
  make_dirs(root / "a" / "b");
  make_dirs(root / "c");
  auto plan = host::plan_shares({}, "/bin/true", {root / "a"});
  ASSERT_EQ(plan.mounts.size(), 2u);
  EXPECT_EQ(plan.mounts[1].target, (root / "a").string());
  EXPECT_EQ(plan.mounts[1].kind, proto::MountKind::kReadWrite);
  EXPECT_FALSE(plan.devices[1].read_only);
  // The share names the tree: it decides (read-only here).
  plan = host::plan_shares({{(root / "a").string(), true}}, "/bin/true", {root / "a"});
  ASSERT_EQ(plan.mounts.size(), 2u);
  EXPECT_EQ(plan.mounts[1].kind, proto::MountKind::kReadOnly);
  // Inside a read-write share: covered by it.
  plan = host::plan_shares({{(root / "a").string(), false}}, "/bin/true", {root / "a" / "b"});
  EXPECT_EQ(plan.mounts.size(), 2u);
  // Inside a read-only share: mounted read-write on top of it, after it.
  plan = host::plan_shares({{(root / "a").string(), true}}, "/bin/true", {root / "a" / "b", root / "c"});
  ASSERT_EQ(plan.mounts.size(), 4u);
  EXPECT_EQ(plan.mounts.back().target, (root / "a" / "b").string());
  EXPECT_EQ(plan.mounts.back().kind, proto::MountKind::kReadWrite);
}

TEST(WriteThroughShares, DevicesArePaddedSoRunsShareATemplate) {
  TempDir t("/tmp", "kestrel-write-");
  fs::path root = fs::canonical(t.path());
  make_dirs(root / "a");
  auto none = host::plan_shares({}, "/bin/true").devices;
  auto one = host::plan_shares({}, "/bin/true", {root / "a"}).devices;
  host::pad_share_devices(none, root / "empty");
  host::pad_share_devices(one, root / "empty");
  ASSERT_EQ(none.size(), host::kMinShareDevices);
  ASSERT_EQ(one.size(), host::kMinShareDevices);
  for (size_t i = 0; i < none.size(); ++i) EXPECT_EQ(none[i].tag, one[i].tag) << i;
  EXPECT_TRUE(none[1].read_only);  // an unused device exports nothing writable
  EXPECT_EQ(none[1].path, root / "empty");
}

TEST(PathWithin, ComparesWholeComponents) {
  EXPECT_TRUE(path_within("/a/b", "/a"));
  EXPECT_TRUE(path_within("/a", "/a"));
  EXPECT_TRUE(path_within("/a", "/a/"));
  EXPECT_FALSE(path_within("/ab", "/a"));
  EXPECT_FALSE(path_within("/a", "/a/b"));
  EXPECT_TRUE(path_within("/anything", "/"));
}

}  // namespace
}  // namespace kestrel

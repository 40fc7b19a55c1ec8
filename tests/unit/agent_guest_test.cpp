// What the agent gives each guest to look like a machine (agent/identity.hpp)
// and what it tells of the guest's OOM killer (agent/oom.hpp), tried in
// temporary directories on the host; the VM tests (tests/vm/t-guest.sh)
// try them in guests.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "agent/identity.hpp"
#include "agent/network.hpp"
#include "agent/oom.hpp"
#include "proto/messages.hpp"
#include "util/fs.hpp"

namespace kestrel::agent {
namespace {

namespace fs = std::filesystem;

TEST(HostsNaming, DebiansDefaultWhenTheRootHasNone) {
  std::string hosts = hosts_naming(std::nullopt, "kestrel-ab12");
  EXPECT_NE(hosts.find("127.0.0.1\tlocalhost\n"), std::string::npos);
  EXPECT_NE(hosts.find("::1\t\tlocalhost ip6-localhost ip6-loopback\n"), std::string::npos);
  EXPECT_TRUE(hosts.ends_with("127.0.1.1\tkestrel-ab12\t# kestrel: this VM\n")) << hosts;
}

TEST(HostsNaming, KeepsTheRootsOwnAndReplacesAnEarlierName) {
  std::string own = "127.0.0.1 localhost\n10.9.9.9 db # a recipe's\n";
  std::string first = hosts_naming(own, "kestrel-template");
  EXPECT_EQ(first, own + "127.0.1.1\tkestrel-template\t# kestrel: this VM\n");
  // A clone's SETUP: the template's name goes, the clone's comes.
  EXPECT_EQ(hosts_naming(first, "kestrel-c10e"), own + "127.0.1.1\tkestrel-c10e\t# kestrel: this VM\n");
  // No final newline, no blank line, an empty file.
  EXPECT_EQ(hosts_naming(std::string("127.0.0.1 localhost"), "v"),
            "127.0.0.1 localhost\n127.0.1.1\tv\t# kestrel: this VM\n");
  EXPECT_EQ(hosts_naming(std::string(""), "v"), "127.0.1.1\tv\t# kestrel: this VM\n");
}

TEST(MachineId, ThirtyTwoHexDigitsEachTimeNew) {
  std::string a = new_machine_id(), b = new_machine_id();
  ASSERT_EQ(a.size(), 33u);
  EXPECT_EQ(a.back(), '\n');
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), 32u);
  EXPECT_NE(a, b);
}

TEST(SetIdentity, WritesHostsAndAMachineIdPerName) {
  TempDir root("/tmp", "kestrel-guest-root-");
  make_dirs(root.path() / "etc", 0755);
  write_file_atomic(root.path() / "etc/hosts", "127.0.0.1 localhost\n");
  write_file_atomic(root.path() / "etc/machine-id", "00000000000000000000000000000000\n");
  set_identity(root.path().string(), GuestIdentity{"kestrel-one"});
  EXPECT_EQ(read_file(root.path() / "etc/hosts"), "127.0.0.1 localhost\n127.0.1.1\tkestrel-one\t# kestrel: this VM\n");
  std::string id = read_file(root.path() / "etc/machine-id");
  EXPECT_NE(id, "00000000000000000000000000000000\n");
  // Another SETUP of the same VM (shares only) keeps it; a new name (a clone) gets a new one.
  set_identity(root.path().string(), GuestIdentity{"kestrel-one"});
  EXPECT_EQ(read_file(root.path() / "etc/machine-id"), id);
  set_identity(root.path().string(), GuestIdentity{"kestrel-two"});
  EXPECT_NE(read_file(root.path() / "etc/machine-id"), id);
  EXPECT_EQ(read_file(root.path() / "etc/hosts"), "127.0.0.1 localhost\n127.0.1.1\tkestrel-two\t# kestrel: this VM\n");
  // A root without /etc gets one; the agent's own root ("") is never written.
  TempDir bare("/tmp", "kestrel-guest-root-");
  set_identity(bare.path().string(), GuestIdentity{"kestrel-three"});
  EXPECT_TRUE(fs::exists(bare.path() / "etc/machine-id"));
  EXPECT_NE(read_file(bare.path() / "etc/hosts").find("localhost"), std::string::npos);
}

// A root overlay's files are written into its upper layer before it is
// mounted: the lower layer (the host's root) is read, never written.
TEST(SetIdentity, InAnOverlaysUpperLayer) {
  TempDir lower("/tmp", "kestrel-guest-lower-");
  TempDir upper("/tmp", "kestrel-guest-upper-");
  make_dirs(lower.path() / "etc", 0755);
  write_file_atomic(lower.path() / "etc/hosts", "127.0.0.1 localhost\n");
  write_file_atomic(lower.path() / "etc/machine-id", "00000000000000000000000000000000\n");
  set_identity_in_upper(lower.path().string(), upper.path().string(), GuestIdentity{"kestrel-six", true});
  EXPECT_EQ(read_file(upper.path() / "etc/hosts"), "127.0.0.1 localhost\n127.0.1.1\tkestrel-six\t# kestrel: this VM\n");
  EXPECT_EQ(read_file(upper.path() / "etc/resolv.conf"), kOfflineResolvConf);
  EXPECT_EQ(fs::status(upper.path() / "etc").permissions(), fs::perms(0755));
  std::string id = read_file(upper.path() / "etc/machine-id");
  EXPECT_EQ(id.size(), 33u);
  EXPECT_EQ(read_file(lower.path() / "etc/hosts"), "127.0.0.1 localhost\n");
  EXPECT_EQ(read_file(lower.path() / "etc/machine-id"), "00000000000000000000000000000000\n");
  EXPECT_FALSE(fs::exists(lower.path() / "etc/resolv.conf"));
  // A fresh upper layer each SETUP: a machine-id each time, even for the same name.
  TempDir upper2("/tmp", "kestrel-guest-upper-");
  set_identity_in_upper(lower.path().string(), upper2.path().string(), GuestIdentity{"kestrel-six", false});
  EXPECT_NE(read_file(upper2.path() / "etc/machine-id"), id);
  EXPECT_FALSE(fs::exists(upper2.path() / "etc/resolv.conf"));
}

// The host's /etc/hosts sent with SETUP is used instead of the root's; an
// image gets the host's time zone.
TEST(SetIdentity, HostsAndTimeZoneFromTheHost) {
  TempDir root("/tmp", "kestrel-guest-root-");
  make_dirs(root.path() / "etc", 0755);
  write_file_atomic(root.path() / "etc/hosts", "10.1.1.1 not-read\n");
  fs::create_symlink("/usr/share/zoneinfo/Etc/UTC", root.path() / "etc/localtime");
  GuestIdentity id{"kestrel-seven"};
  id.hosts = "127.0.0.1 localhost\n";
  id.localtime = "TZif2 zone";
  id.timezone = "Asia/Tokyo";
  set_identity(root.path().string(), id);
  EXPECT_EQ(read_file(root.path() / "etc/hosts"),
            "127.0.0.1 localhost\n127.0.1.1\tkestrel-seven\t# kestrel: this VM\n");
  EXPECT_FALSE(fs::is_symlink(root.path() / "etc/localtime"));
  EXPECT_EQ(read_file(root.path() / "etc/localtime"), "TZif2 zone");
  EXPECT_EQ(read_file(root.path() / "etc/timezone"), "Asia/Tokyo\n");
}

TEST(SetIdentity, OfflineMeansNoDnsServer) {
  TempDir root("/tmp", "kestrel-guest-root-");
  make_dirs(root.path() / "etc", 0755);
  write_file_atomic(root.path() / "etc/resolv.conf", "nameserver 10.255.255.53\n");
  set_identity(root.path().string(), GuestIdentity{"kestrel-five", false});
  EXPECT_EQ(read_file(root.path() / "etc/resolv.conf"), "nameserver 10.255.255.53\n");
  set_identity(root.path().string(), GuestIdentity{"kestrel-five", true});
  EXPECT_EQ(read_file(root.path() / "etc/resolv.conf"), kOfflineResolvConf);
}

// An /etc/hosts that is a link to a host path: read and replaced inside
// the guest root, never written through.
TEST(SetIdentity, ALinkLeadsNowhereOutside) {
  TempDir root("/tmp", "kestrel-guest-root-");
  TempDir outside("/tmp", "kestrel-outside-");
  make_dirs(root.path() / "etc", 0755);
  write_file_atomic(outside.path() / "hosts", "10.0.0.1 outside\n");
  fs::create_symlink(outside.path() / "hosts", root.path() / "etc/hosts");
  set_identity(root.path().string(), GuestIdentity{"kestrel-four"});
  EXPECT_EQ(read_file(outside.path() / "hosts"), "10.0.0.1 outside\n");
  EXPECT_FALSE(fs::is_symlink(root.path() / "etc/hosts"));
  // The link's target resolved inside the root: there is none, so Debian's default.
  EXPECT_NE(read_file(root.path() / "etc/hosts").find("127.0.0.1\tlocalhost"), std::string::npos);
}

TEST(Oom, CountFromVmstat) {
  EXPECT_EQ(parse_oom_kill_count("pgfault 12\noom_kill 3\nnr_foo 9\n"), 3u);
  EXPECT_EQ(parse_oom_kill_count("pgfault 12\n"), std::nullopt);  // no VM event counters
  EXPECT_EQ(parse_oom_kill_count("oom_kill_x 5\n"), std::nullopt);
  EXPECT_EQ(oom_mark("/nonexistent/vmstat").kills, std::nullopt);
  EXPECT_GT(oom_mark("/nonexistent/vmstat").usec, 0u);
}

TEST(Oom, DescribesTheKernelsLine) {
  EXPECT_EQ(describe_oom_kill("3,1207,8410922,-;Out of memory: Killed process 312 (python3) total-vm:431232kB, "
                              "anon-rss:411648kB, file-rss:2304kB, shmem-rss:0kB, UID:0 pgtables:860kB "
                              "oom_score_adj:0"),
            "process 312 (python3, 402 MiB resident)");
  EXPECT_EQ(describe_oom_kill("Memory cgroup out of memory: Killed process 7 (x y) total-vm:1kB, anon-rss:0kB"),
            "process 7 (x y, 0 MiB resident)");
  EXPECT_EQ(describe_oom_kill("oom-kill:constraint=CONSTRAINT_NONE,task=python3,pid=312"), std::nullopt);
  EXPECT_EQ(describe_oom_kill("Out of memory: Killed process x"), std::nullopt);
  EXPECT_EQ(describe_oom_kill(""), std::nullopt);
}

// With the kernel's kill count: the last kills the log tells of.
TEST(Oom, KillsSinceACount) {
  TempDir dir("/tmp", "kestrel-oom-");
  fs::path vmstat = dir.path() / "vmstat", kmsg = dir.path() / "kmsg";
  write_file_atomic(vmstat, "oom_kill 2\n");
  write_file_atomic(kmsg,
                    "6,1,1,-;Out of memory: Killed process 10 (old) total-vm:1kB, anon-rss:1024kB\n"
                    "4,2,2,-;other news\n"
                    "3,3,3,-;Out of memory: Killed process 312 (alloc) total-vm:1kB, anon-rss:411648kB\n"
                    " SUBSYSTEM=memory\n");
  auto since = [&](uint64_t kills) { return oom_kills_since({kills, 0}, vmstat.string(), kmsg.string()); };
  EXPECT_EQ(since(2), "");
  EXPECT_EQ(since(1), "process 312 (alloc, 402 MiB resident)");
  EXPECT_EQ(since(0), "process 10 (old, 1 MiB resident); process 312 (alloc, 402 MiB resident)");
  // More kills than the log tells of (overwritten, or no log).
  write_file_atomic(vmstat, "oom_kill 5\n");
  EXPECT_EQ(since(2), "process 10 (old, 1 MiB resident); process 312 (alloc, 402 MiB resident) and 1 more");
  EXPECT_EQ(oom_kills_since({4, 0}, vmstat.string(), (dir.path() / "none").string()), "1 process");
  // Bounded, however many and however long the names.
  std::string many;
  for (int i = 0; i < 50; ++i)
    many += "3,1,1,-;Out of memory: Killed process 1 (" + std::string(60, 'n') + ") anon-rss:1kB\n";
  write_file_atomic(kmsg, many);
  write_file_atomic(vmstat, "oom_kill 100\n");
  std::string text = since(0);
  EXPECT_LE(text.size(), proto::kMaxOomText);
  EXPECT_TRUE(text.ends_with(" and 96 more")) << text;
}

// Without one (CONFIG_VM_EVENT_COUNTERS off): the kills the log records
// from the program's start on.
TEST(Oom, KillsSinceAMomentWithoutACount) {
  TempDir dir("/tmp", "kestrel-oom-");
  fs::path vmstat = dir.path() / "vmstat", kmsg = dir.path() / "kmsg";
  write_file_atomic(vmstat, "pgfault 1\n");
  write_file_atomic(kmsg,
                    "6,1,1000,-;Out of memory: Killed process 10 (old) total-vm:1kB, anon-rss:1024kB\n"
                    "3,3,5000,-;Out of memory: Killed process 312 (alloc) total-vm:1kB, anon-rss:411648kB\n");
  auto since = [&](uint64_t usec) { return oom_kills_since({std::nullopt, usec}, vmstat.string(), kmsg.string()); };
  EXPECT_EQ(since(6000), "");
  EXPECT_EQ(since(2000), "process 312 (alloc, 402 MiB resident)");
  EXPECT_EQ(since(0), "process 10 (old, 1 MiB resident); process 312 (alloc, 402 MiB resident)");
  // A mark of the time alone on a kernel that counts: no kill since boot is
  // "" whatever the log says; else the log from the mark's time on.
  OomMark mark = oom_mark_time();
  EXPECT_EQ(mark.kills, std::nullopt);
  write_file_atomic(vmstat, "oom_kill 0\n");
  EXPECT_EQ(since(0), "");
  write_file_atomic(vmstat, "oom_kill 2\n");
  EXPECT_EQ(since(2000), "process 312 (alloc, 402 MiB resident)");
}

}  // namespace
}  // namespace kestrel::agent

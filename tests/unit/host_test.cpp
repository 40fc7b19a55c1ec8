#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "deploy/deployment.hpp"
#include "deploy/naming.hpp"
#include "deploy/teardown.hpp"
#include "host/environment.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"
#include "vm/qemu.hpp"

namespace kestrel {
namespace {

TEST(Naming, StemDropsPathCargoHashAndOddCharacters) {
  EXPECT_EQ(deploy::name_stem("target/debug/deps/my_crate-1a2b3c4d5e6f7a8b"), "my-crate");
  EXPECT_EQ(deploy::name_stem("/bin/true"), "true");
  EXPECT_EQ(deploy::name_stem("Weird Name!!.test"), "weird-name-test");
  EXPECT_EQ(deploy::name_stem("///"), "vm");
  EXPECT_EQ(deploy::name_stem("averylongtestbinarynameindeed").size(), 24u);
  EXPECT_EQ(deploy::name_stem("a-very-long-test-binary-name-indeed"), "a-very-long-test-binary");  // no trailing dash
}

TEST(Naming, NamesAreValidAndUnique) {
  std::string a = deploy::make_vm_name("/usr/bin/some_test");
  std::string b = deploy::make_vm_name("/usr/bin/some_test");
  EXPECT_NE(a, b);
  EXPECT_TRUE(deploy::is_valid_vm_name(a));
  EXPECT_EQ(a.rfind("some-test-", 0), 0u);
  // In a Slurm job: the node's name between stem and digits.
  std::string on_node = deploy::make_vm_name("/usr/bin/some_test", "Node_12.cluster.example.org");
  EXPECT_EQ(on_node.rfind("some-test-node-12-cluster-", 0), 0u) << on_node;
  EXPECT_EQ(on_node.size(), std::string("some-test-node-12-cluster-").size() + 6);
  EXPECT_TRUE(deploy::is_valid_vm_name(on_node));
  EXPECT_TRUE(deploy::is_valid_vm_name(deploy::make_vm_name(std::string(100, 'x'), std::string(100, 'y'))));
  EXPECT_FALSE(deploy::is_valid_vm_name("-x"));
  EXPECT_FALSE(deploy::is_valid_vm_name("A"));
  EXPECT_FALSE(deploy::is_valid_vm_name(""));
}

TEST(Environment, DenyListIsApplied) {
  std::string a = "PATH=/bin", b = "DISPLAY=:0", c = "SSH_AUTH_SOCK=/x", d = "MY_VAR=1", e = "noequals";
  char* env[] = {a.data(), b.data(), c.data(), d.data(), e.data(), nullptr};
  auto out = host::guest_environment(env);
  EXPECT_EQ(out, (std::vector<std::string>{"PATH=/bin", "MY_VAR=1"}));
}

// The host's time zone from a fake root: /etc/timezone names it; else the
// link's part after zoneinfo/; a file that is not TZif is not sent.
TEST(Environment, HostTimeZone) {
  TempDir root("/tmp", "kestrel-fake-host-");
  EXPECT_EQ(host::host_time_zone(root.path()).name, "");
  make_dirs(root.path() / "etc", 0755);
  make_dirs(root.path() / "usr/share/zoneinfo/America", 0755);
  write_file_atomic(root.path() / "usr/share/zoneinfo/America/New_York", std::string("TZif2\0\0zone", 11));
  fs::create_symlink(root.path() / "usr/share/zoneinfo/America/New_York", root.path() / "etc/localtime");
  host::TimeZone tz = host::host_time_zone(root.path());
  EXPECT_EQ(tz.name, "America/New_York");
  EXPECT_EQ(tz.localtime, std::string("TZif2\0\0zone", 11));
  write_file_atomic(root.path() / "etc/timezone", "Europe/Berlin\n");
  EXPECT_EQ(host::host_time_zone(root.path()).name, "Europe/Berlin");
  write_file_atomic(root.path() / "etc/timezone", "../../etc/passwd\n");
  EXPECT_EQ(host::host_time_zone(root.path()).name, "America/New_York");  // a bad name: the link's
  fs::remove(root.path() / "etc/localtime");
  write_file_atomic(root.path() / "etc/localtime", "not a zone file");
  EXPECT_EQ(host::host_time_zone(root.path()).localtime, "");
  // A FIFO is never read (no hang).
  fs::remove(root.path() / "etc/localtime");
  ASSERT_EQ(::mkfifo((root.path() / "etc/localtime").c_str(), 0644), 0);
  EXPECT_EQ(host::host_time_zone(root.path()).localtime, "");
}

TEST(Qemu, CommandLineHasWhatTheGuestContractNeeds) {
  vm::VmConfig c;
  c.name = "t-abc123";
  c.paths.dir = "/tmp/rt/t-abc123/t-abc123";
  c.kernel = "/k/vmlinux";
  c.initramfs = "/k/initrd.cpio";
  c.shares = {{"root", "/", true}, {"share0", "/srv/a,b", false}};
  auto argv = vm::qemu_argv(c, "qemu-system-x86_64");
  std::string line = shell_join(argv);
  EXPECT_NE(line.find("-machine pc "), std::string::npos) << line;
  EXPECT_NE(line.find("-accel tcg"), std::string::npos);
  EXPECT_EQ(line.find("kvm"), std::string::npos);
  EXPECT_NE(line.find("kestrel.name=t-abc123"), std::string::npos);
  EXPECT_NE(line.find("name=org.kestrel.agent.0"), std::string::npos);
  EXPECT_NE(line.find("name=org.kestrel.agent.7"), std::string::npos);
  EXPECT_NE(line.find("path=/,security_model=none,multidevs=remap,readonly=on"), std::string::npos);
  EXPECT_NE(line.find("mount_tag=share0"), std::string::npos);
  // A comma in a path is doubled: it cannot end the value and add options.
  EXPECT_NE(line.find("path=/srv/a,,b,security_model=none"), std::string::npos) << line;
  EXPECT_NE(line.find("unix:/tmp/rt/t-abc123/t-abc123/qmp.sock"), std::string::npos);
  EXPECT_NE(line.find("logfile=/tmp/rt/t-abc123/t-abc123/console.log"), std::string::npos);
  EXPECT_NE(line.find(" norandmaps"), std::string::npos);  // TCG: translated code is reused across processes
  // TCG: queue notifications handled on the vCPU thread, every virtio device.
  EXPECT_NE(line.find("virtio-serial-pci,id=vser,ioeventfd=off"), std::string::npos) << line;
  EXPECT_NE(line.find("mount_tag=share0,ioeventfd=off"), std::string::npos) << line;
  EXPECT_NE(line.find("virtio-rng-pci,ioeventfd=off"), std::string::npos) << line;
  c.accel = vm::Accel::kKvm;
  line = shell_join(vm::qemu_argv(c, "q"));
  EXPECT_EQ(line.find("ioeventfd"), std::string::npos) << line;
  EXPECT_NE(line.find("accel=kvm"), std::string::npos);
  EXPECT_NE(line.find("-cpu host"), std::string::npos);
  EXPECT_EQ(line.find("norandmaps"), std::string::npos);
}

TEST(Deployment, StateRoundTripsAndRejectsOtherVersions) {
  deploy::State s;
  s.status = "kept";
  s.runner_pid = 42;
  s.command = {"/bin/x", "a b"};
  s.vms = {{"x-1", 99, "tcg"}};
  s.exit_status = 3;
  auto back = deploy::State::from_json(s.to_json(), "f");
  EXPECT_EQ(back.status, "kept");
  EXPECT_EQ(back.command, s.command);
  ASSERT_EQ(back.vms.size(), 1u);
  EXPECT_EQ(back.vms[0].pid, 99);
  EXPECT_EQ(back.exit_status, 3);
  EXPECT_THROW(deploy::State::from_json(R"({"version": 2})", "f"), Error);
  EXPECT_THROW(deploy::State::from_json("not json", "f"), Error);
}

TEST(Deployment, DestroyRefusesDirectoriesThatAreNotOurs) {
  char templ[] = "/tmp/kestrel-test-XXXXXX";
  ASSERT_TRUE(::mkdtemp(templ));
  EXPECT_THROW(deploy::destroy_deployment(templ, Deadline::after(std::chrono::seconds(1))), Error);
  EXPECT_TRUE(std::filesystem::exists(templ));
  std::filesystem::remove_all(templ);
  // A directory that is already gone is fine (idempotent).
  EXPECT_NO_THROW(deploy::destroy_deployment(templ, Deadline::after(std::chrono::seconds(1))));
}

TEST(Deployment, CreateLocksAndDestroyRemoves) {
  char templ[] = "/tmp/kestrel-rt-XXXXXX";
  ASSERT_TRUE(::mkdtemp(templ));
  ::setenv("KESTREL_RUNTIME_DIR", templ, 1);
  {
    auto d = deploy::Deployment::create("unit-abc");
    EXPECT_TRUE(std::filesystem::is_regular_file(d.dir() / "deployment.json"));
    EXPECT_TRUE(is_locked(d.runner_lock_file()));
    EXPECT_THROW(deploy::Deployment::create("unit-abc"), Error);
    auto again = deploy::Deployment::open(d.dir());
    EXPECT_EQ(again.state().runner_pid, ::getpid());
    deploy::destroy_deployment(d.dir(), Deadline::after(std::chrono::seconds(1)));
    EXPECT_FALSE(std::filesystem::exists(d.dir()));
  }
  ::unsetenv("KESTREL_RUNTIME_DIR");
  std::filesystem::remove_all(templ);
}

TEST(Qemu, TailLines) {
  char templ[] = "/tmp/kestrel-tail-XXXXXX";
  int fd = ::mkstemp(templ);
  ASSERT_GE(fd, 0);
  std::string text = "one\ntwo\nthree\nfour\n";
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  EXPECT_EQ(vm::tail_lines(templ, 2), "three\nfour");
  EXPECT_EQ(vm::tail_lines(templ, 10), "one\ntwo\nthree\nfour");
  ::unlink(templ);
  EXPECT_EQ(vm::tail_lines(templ, 2), "");
}

}  // namespace
}  // namespace kestrel

// Warm-start pieces that need no VM: the template key, the template cache's
// validation, the clone's command line, and the QMP client against a fake
// QEMU monitor.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <thread>

#include "assets_test_support.hpp"
#include "host/template_store.hpp"
#include "host/warm_start.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/io.hpp"
#include "util/lockfile.hpp"
#include "util/socket.hpp"
#include "vm/host_facts.hpp"
#include "vm/qemu.hpp"
#include "vm/qmp.hpp"

namespace kestrel::host {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class WarmTest : public ::testing::Test {
 protected:
  WarmTest() {
    // A stand-in for QEMU that only knows --version.
    qemu_ = (dir_.path() / "qemu-system-x86_64").string();
    write_file_atomic(qemu_, "#!/bin/sh\necho 'QEMU emulator version 7.2.99'\n", 0755);
    write_file_atomic(dir_.path() / "vmlinux", "kernel");
    write_file_atomic(dir_.path() / "initramfs.cpio", "initramfs");
  }

  vm::VmConfig config(const std::string& name) {
    vm::VmConfig c;
    c.name = name;
    c.paths.dir = dir_.path() / "rt" / name / name;
    c.kernel = dir_.path() / "vmlinux";
    c.initramfs = dir_.path() / "initramfs.cpio";
    c.shares = {{"root", "/", true}, {"share0", dir_.path() / "rt" / name / "data", false}};
    return c;
  }

  // A complete template as the builder leaves it, published under `key`.
  TemplateFiles publish(const std::string& key, uint32_t mem_mib = 512) {
    TemplateFiles b = template_build_files(key);
    make_dirs(b.dir);
    UniqueFd mem(::open(b.memory().c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    EXPECT_EQ(::ftruncate(mem.get(), off_t{mem_mib} << 20), 0);
    write_file_atomic(b.state(), std::string(4096, 's'));
    write_file_atomic(b.console_log(), "booted\n");
    return publish_template(key, {{"kernel", "test"}}).files;
  }

  TempDir dir_{"/tmp", "kestrel-warm-"};
  assets::testing::ScopedEnv cache_{"KESTREL_CACHE_DIR", (dir_.path() / "cache").string()};
  std::string qemu_;
};

TEST_F(WarmTest, KeyIgnoresNamesAndPathsButNotTheMachine) {
  std::string a = template_key(config("test-aaaaaa"), qemu_);
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a, template_key(config("other-bbbbbb"), qemu_));

  vm::VmConfig more = config("test-aaaaaa");
  more.mem_mib = 2048;
  EXPECT_NE(a, template_key(more, qemu_));
  vm::VmConfig cpus = config("test-aaaaaa");
  cpus.cpus = 2;
  EXPECT_NE(a, template_key(cpus, qemu_));
  vm::VmConfig debug = config("test-aaaaaa");
  debug.debug = true;
  EXPECT_NE(a, template_key(debug, qemu_));
  vm::VmConfig tags = config("test-aaaaaa");
  tags.shares[1].tag = "data";
  EXPECT_NE(a, template_key(tags, qemu_));
  vm::VmConfig kvm = config("test-aaaaaa");
  kvm.accel = vm::Accel::kKvm;
  EXPECT_NE(a, template_key(kvm, qemu_));
  // The kernel command line: the user's arguments and kestrel's adapted flags.
  vm::VmConfig args = config("test-aaaaaa");
  args.kernel_args = "foo=bar";
  EXPECT_NE(a, template_key(args, qemu_));
  vm::VmConfig other_args = config("test-aaaaaa");
  other_args.kernel_args = "foo=baz";
  EXPECT_NE(template_key(args, qemu_), template_key(other_args, qemu_));
  vm::VmConfig no_pci_noacpi = config("test-aaaaaa");
  no_pci_noacpi.pci_noacpi = false;
  EXPECT_NE(a, template_key(no_pci_noacpi, qemu_));

  // A rebuilt kernel at the same path is a new configuration.
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  write_file_atomic(dir_.path() / "vmlinux", "kernel, rebuilt");
  EXPECT_NE(a, template_key(cpus, qemu_));
}

// A template made on one host is not one for another: CPU model, flags and
// kernel are part of the key (fake hosts: what read_host_facts reads).
TEST_F(WarmTest, KeyDependsOnTheHostsCpuAndKernel) {
  auto host = [&](const std::string& name, const std::string& model, const std::string& flags,
                  const std::string& release) {
    fs::path root = dir_.path() / name;
    make_dirs(root / "proc/sys/kernel");
    write_file_atomic(root / "proc/cpuinfo", "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: " + model +
                                                 "\nflags\t\t: " + flags + "\n\nprocessor\t: 1\nflags\t\t: other\n");
    write_file_atomic(root / "proc/sys/kernel/osrelease", release + "\n");
    return vm::snapshot_host(vm::read_host_facts(root));
  };
  std::string a = host("a", "Xeon 8480", "fpu vmx avx512f", "6.1.0-18-amd64");
  EXPECT_EQ(a, "GenuineIntel|Xeon 8480|fpu vmx avx512f|6.1.0-18-amd64");
  std::string same = host("same", "Xeon 8480", "fpu vmx avx512f", "6.1.0-18-amd64");
  std::string flags = host("flags", "Xeon 8480", "fpu vmx", "6.1.0-18-amd64");
  std::string model = host("model", "Xeon 6148", "fpu vmx avx512f", "6.1.0-18-amd64");
  std::string kernel = host("kernel", "Xeon 8480", "fpu vmx avx512f", "6.1.0-21-amd64");
  vm::VmConfig c = config("test-aaaaaa");
  std::string key = template_key(c, qemu_, "", a);
  EXPECT_EQ(key, template_key(config("other-bbbbbb"), qemu_, "", same));
  for (const auto& other : {flags, model, kernel}) EXPECT_NE(key, template_key(c, qemu_, "", other)) << other;
}

TEST_F(WarmTest, CloneCommandLineMapsTheTemplateMemoryPrivately) {
  vm::VmConfig c = config("clone-cccccc");
  c.memory_file = "/cache/templates/k/memory";
  c.incoming = true;
  auto argv = vm::qemu_argv(c, qemu_);
  auto has = [&](const std::string& s) { return std::find(argv.begin(), argv.end(), s) != argv.end(); };
  EXPECT_TRUE(has("memory-backend-file,id=ram0,size=1024M,mem-path=/cache/templates/k/memory,share=off"));
  EXPECT_TRUE(has("pc,memory-backend=ram0"));
  EXPECT_TRUE(has("defer"));
  c.memory_shared = true;
  c.incoming = false;
  argv = vm::qemu_argv(c, qemu_);
  EXPECT_TRUE(has("memory-backend-file,id=ram0,size=1024M,mem-path=/cache/templates/k/memory,share=on"));
  EXPECT_FALSE(has("defer"));
  // A plain cold boot has no memory file.
  argv = vm::qemu_argv(config("cold-dddddd"), qemu_);
  EXPECT_FALSE(std::any_of(argv.begin(), argv.end(),
                           [](const std::string& a) { return a.find("memory-backend") != std::string::npos; }));
}

TEST_F(WarmTest, IntactTemplateIsFound) {
  std::string key(64, 'a');
  EXPECT_FALSE(find_template(key, 512));  // never built
  TemplateFiles t = publish(key);
  auto found = find_template(key, 512);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->files.dir, t.dir);
  EXPECT_TRUE(found->hold.locked());
  EXPECT_FALSE(fs::exists(template_build_files(key).dir));
  json meta = json::parse(read_file(t.meta()));
  EXPECT_EQ(meta["key"], key);
  EXPECT_EQ(meta["kernel"], "test");
  ASSERT_EQ(list_templates().size(), 1u);
  EXPECT_EQ(list_templates()[0].key, key);
}

TEST_F(WarmTest, DamagedTemplatesAreRemovedWithAReason) {
  std::string key(64, 'b');
  auto damaged = [&](const std::function<void(const TemplateFiles&)>& damage, const std::string& reason) {
    TemplateFiles t = publish(key);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a new mtime
    damage(t);
    std::string problem;
    EXPECT_FALSE(find_template(key, 512, &problem)) << reason;
    EXPECT_NE(problem.find(reason), std::string::npos) << problem;
    EXPECT_FALSE(fs::exists(t.dir)) << reason;
  };
  damaged([](const TemplateFiles& t) { EXPECT_EQ(::truncate(t.memory().c_str(), 4096), 0); }, "memory file");
  damaged([](const TemplateFiles& t) { fs::remove(t.memory()); }, "memory file");
  damaged([](const TemplateFiles& t) { fs::remove(t.state()); }, "device state");
  damaged([](const TemplateFiles& t) { write_file_atomic(t.state(), std::string(4096, 'x')); }, "device state");
  damaged([](const TemplateFiles& t) { fs::remove(t.meta()); }, "template.json");
  damaged([](const TemplateFiles& t) { write_file_atomic(t.meta(), "{\"format\": 0}"); }, "template.json");
  // The right files for another memory size are no template for this one.
  publish(key, 256);
  EXPECT_FALSE(find_template(key, 512));
}

TEST_F(WarmTest, PruningKeepsTheMostRecentlyUsed) {
  std::vector<TemplateFiles> all;
  for (char c : std::string("cdef")) {
    all.push_back(publish(std::string(64, c)));
    // Used long ago, in publishing order.
    struct timespec times[2] = {{1000 + c, 0}, {1000 + c, 0}};
    ::utimensat(AT_FDCWD, all.back().meta().c_str(), times, 0);
  }
  mark_template_used(all[0]);
  prune_templates(2, std::chrono::hours(24 * 365 * 100), fs::path());
  EXPECT_TRUE(fs::exists(all[0].dir));  // used just now
  EXPECT_FALSE(fs::exists(all[1].dir));
  EXPECT_FALSE(fs::exists(all[2].dir));
  EXPECT_TRUE(fs::exists(all[3].dir));  // the most recent of the old ones
  prune_templates(8, std::chrono::hours(1), all[3].dir);
  EXPECT_TRUE(fs::exists(all[0].dir));
  EXPECT_TRUE(fs::exists(all[3].dir));  // too old, but spared
}

// Templates used within the hour stay, however many: a test suite's or a
// topology's configurations are in use together.
TEST_F(WarmTest, PruningSparesTemplatesUsedWithinTheHour) {
  std::vector<TemplateFiles> all;
  for (char c : std::string("ghi")) all.push_back(publish(std::string(64, c)));
  struct timespec two_hours_ago[2] = {{::time(nullptr) - 7200, 0}, {::time(nullptr) - 7200, 0}};
  ::utimensat(AT_FDCWD, all[2].meta().c_str(), two_hours_ago, 0);
  prune_templates(1, std::chrono::hours(24), fs::path());
  EXPECT_TRUE(fs::exists(all[0].dir));
  EXPECT_TRUE(fs::exists(all[1].dir));
  EXPECT_FALSE(fs::exists(all[2].dir));  // beyond `keep` and not used lately
}

TEST_F(WarmTest, LockFilesOfGoneTemplatesAreRemoved) {
  TemplateFiles kept = publish(std::string(64, 'a'));
  { LockFile l = LockFile::try_lock(template_lock(std::string(64, 'a'))); }
  { LockFile l = LockFile::try_lock(template_lock(std::string(64, 'b'))); }  // its template is gone
  LockFile building = LockFile::try_lock(template_lock(std::string(64, 'c')));
  remove_stale_template_locks();
  EXPECT_TRUE(fs::exists(template_lock(std::string(64, 'a'))));  // guards a template
  EXPECT_FALSE(fs::exists(template_lock(std::string(64, 'b'))));
  EXPECT_TRUE(fs::exists(template_lock(std::string(64, 'c'))));  // held by a builder
  EXPECT_TRUE(fs::exists(kept.dir));
}

// `kestrel cache clear` during runs (issue 9, item 5): a template a run is
// starting from is kept, and removed once no one holds it.
TEST_F(WarmTest, ClearKeepsTemplatesInUse) {
  std::string key(64, 'u');
  TemplateFiles t = publish(key);
  auto used = find_template(key, 512);
  ASSERT_TRUE(used);
  EXPECT_EQ(remove_template(t.dir), Removal::kInUse);
  ClearedTemplates cleared = clear_templates();
  EXPECT_EQ(cleared.removed, 0u);
  EXPECT_EQ(cleared.in_use, 1u);
  EXPECT_TRUE(fs::exists(t.memory()));
  prune_templates(0, std::chrono::hours(1), fs::path());
  EXPECT_TRUE(fs::exists(t.memory()));
  EXPECT_TRUE(find_template(key, 512));  // others may use it too

  used->hold.unlock();
  cleared = clear_templates();
  EXPECT_EQ(cleared.removed, 1u);
  EXPECT_EQ(cleared.in_use, 0u);
  EXPECT_FALSE(fs::exists(t.dir));
  EXPECT_EQ(remove_template(t.dir), Removal::kGone);
  for (const auto& e : fs::directory_iterator(templates_dir()))
    EXPECT_FALSE(e.path().filename().string().starts_with(".trash-")) << e.path();
}

// Interrupted builds (issue 9, item 16): listed, kept while their builder
// lives, removed by `cache clear` and by pruning once it is gone, as is what
// an interrupted removal left.
TEST_F(WarmTest, AbandonedBuildsAreListedAndRemoved) {
  auto half_built = [&](const std::string& key) {
    TemplateFiles b = template_build_files(key);
    make_dirs(b.dir);
    write_file_atomic(b.memory(), std::string(8192, 'm'));
    return b;
  };
  TemplateFiles live = half_built(std::string(64, 'l')), dead = half_built(std::string(64, 'd'));
  LockFile builder = LockFile::try_lock(template_lock(std::string(64, 'l')));
  record_builder(builder);
  auto builds = list_template_builds();
  ASSERT_EQ(builds.size(), 2u);
  std::sort(builds.begin(), builds.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  EXPECT_EQ(builds[0].key, std::string(64, 'd'));
  EXPECT_EQ(builds[0].state, TemplateInfo::State::kAbandoned);
  EXPECT_GE(builds[0].disk_bytes, 8192u);
  EXPECT_EQ(builds[1].state, TemplateInfo::State::kBuilding);
  EXPECT_EQ(builds[1].builder_pid, ::getpid());
  EXPECT_TRUE(list_templates().empty());  // not templates (yet)

  ClearedTemplates cleared = clear_templates();
  EXPECT_EQ(cleared.builds_removed, 1u);
  EXPECT_EQ(cleared.building, 1u);
  EXPECT_FALSE(fs::exists(dead.dir));
  EXPECT_TRUE(fs::exists(live.memory()));

  builder.unlock();  // the builder dies
  make_dirs(templates_dir() / (".trash-" + std::string(64, 't') + "-abcdef"));
  prune_templates(8, std::chrono::hours(1), fs::path());
  EXPECT_FALSE(fs::exists(live.dir));
  EXPECT_TRUE(list_template_builds().empty());
  for (const auto& e : fs::directory_iterator(templates_dir())) ADD_FAILURE() << "left: " << e.path();
}

// Waiting for another run's build (issue 9, item 10): said once, with the
// builder's pid, and bounded; a stopped builder is not waited for long.
TEST_F(WarmTest, WaitForABuilderIsSaidAndBounded) {
  std::string key(64, 'w');
  make_dirs(templates_dir());
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  if (child == 0) {
    LockFile lock = LockFile::try_lock(template_lock(key));
    record_builder(lock);
    (void)!::write(ready[1], "x", 1);
    for (;;) ::pause();
  }
  char c;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  std::vector<std::string> said;
  BootOptions o;
  o.notice = [&](const std::string& line) { said.push_back(line); };
  using namespace std::chrono_literals;

  // A builder that works on: the limit.
  auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(wait_for_template_builder(key, 1500ms, o).locked());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  ASSERT_EQ(said.size(), 2u);
  EXPECT_NE(said[0].find("waiting for the warm-start template being built by pid " + std::to_string(child)),
            std::string::npos)
      << said[0];
  EXPECT_NE(said[1].find("is still building it); booting cold"), std::string::npos) << said[1];

  // A stopped builder: a few seconds, well before the limit.
  said.clear();
  ::kill(child, SIGSTOP);
  started = std::chrono::steady_clock::now();
  EXPECT_FALSE(wait_for_template_builder(key, 60s, o).locked());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);
  ASSERT_EQ(said.size(), 2u);
  EXPECT_NE(said[1].find("is stopped); booting cold"), std::string::npos) << said[1];

  // A builder that is gone: the lock is ours at once, without a word.
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  said.clear();
  EXPECT_TRUE(wait_for_template_builder(key, 1s, o).locked());
  EXPECT_TRUE(said.empty());
  ::close(ready[0]);
  ::close(ready[1]);
}

// A fake QEMU monitor on a unix socket: greets, then answers each command
// with what `reply` says (after an event, to show that events are skipped).
class FakeMonitor {
 public:
  FakeMonitor(fs::path path, std::vector<json>& seen, std::function<json(const json&, int fd)> reply)
      : seen_(seen), listener_(unix_listen(path)), thread_([this, reply] { serve(reply); }) {}
  ~FakeMonitor() { thread_.join(); }

 private:
  void serve(const std::function<json(const json&, int)>& reply) {
    UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    write_all(c.get(),
              R"({"QMP": {"version": {}, "capabilities": []}})"
              "\n",
              "fake monitor");
    std::string buf;
    for (;;) {
      char data[4096];
      char control[CMSG_SPACE(sizeof(int))];
      struct iovec iov = {data, sizeof data};
      struct msghdr msg = {};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(c.get(), &msg, 0);
      if (n <= 0) return;
      int fd = -1;
      if (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg && cmsg->cmsg_type == SCM_RIGHTS)
        std::memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
      buf.append(data, static_cast<size_t>(n));
      for (size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
        json request = json::parse(buf.substr(0, nl));
        buf.erase(0, nl + 1);
        seen_.push_back(request);
        write_all(c.get(),
                  R"({"event": "RESUME", "data": {}})"
                  "\n",
                  "fake monitor");
        write_all(c.get(), reply(request, fd).dump() + "\n", "fake monitor");
        if (fd >= 0) ::close(fd);
        fd = -1;
        if (request["execute"] == "quit") return;
      }
    }
  }
  std::vector<json>& seen_;
  UniqueFd listener_;
  std::thread thread_;
};

TEST_F(WarmTest, QmpRunsCommandsPassesDescriptorsAndReportsErrors) {
  fs::path sock = dir_.path() / "qmp.sock";
  std::string received_fd_target;
  std::vector<json> seen;
  {
    FakeMonitor monitor(sock, seen, [&](const json& r, int fd) -> json {
      if (r["execute"] == "getfd") {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        std::error_code ec;
        received_fd_target = fs::read_symlink(path, ec).string();
        return {{"return", json::object()}};
      }
      if (r["execute"] == "query-migrate") return {{"return", {{"status", "completed"}}}};
      if (r["execute"] == "migrate") return {{"error", {{"class", "GenericError"}, {"desc", "no such fd"}}}};
      return {{"return", json::object()}};
    });
    auto deadline = Deadline::after(std::chrono::seconds(5));
    vm::Qmp qmp = vm::Qmp::connect(sock, deadline);
    EXPECT_EQ(qmp.execute("query-migrate", deadline).value("status", ""), "completed");
    UniqueFd file(::open((dir_.path() / "state").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    qmp.pass_fd("state", file.get(), deadline);
    EXPECT_EQ(received_fd_target, (dir_.path() / "state").string());
    try {
      qmp.execute("migrate", {{"uri", "fd:state"}}, deadline);
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(), "QEMU refused migrate: no such fd");
    }
    qmp.execute("quit", deadline);
  }
  std::vector<std::string> commands;
  for (const auto& r : seen) commands.push_back(r["execute"]);
  EXPECT_EQ(commands, (std::vector<std::string>{"qmp_capabilities", "query-migrate", "getfd", "migrate", "quit"}));
  EXPECT_EQ(seen[2]["arguments"]["fdname"], "state");
  EXPECT_EQ(seen[3]["arguments"]["uri"], "fd:state");
}

TEST_F(WarmTest, QmpGivesUpAtTheDeadline) {
  fs::path sock = dir_.path() / "nobody.sock";
  auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(vm::Qmp::connect(sock, Deadline::after(std::chrono::milliseconds(100))), Error);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

}  // namespace
}  // namespace kestrel::host

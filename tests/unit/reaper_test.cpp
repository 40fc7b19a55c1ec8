// What kestrel deletes and kills (deploy/reaper.hpp, docs/deployment-dir.md):
// only its own deployments, found through any symlink, never losing a QEMU;
// trees a guest made hostile still go; tampered numbers stay harmless.
#include "deploy/reaper.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "deploy/deployment.hpp"
#include "deploy/registry.hpp"
#include "deploy/teardown.hpp"
#include "deploy_test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"

namespace kestrel {
namespace {

using namespace std::chrono_literals;

using test_support::alive;
using test_support::fake_qemu;
using test_support::RuntimeDir;

// A deployment with a running fake QEMU recorded in its state, as a kept run leaves it.
struct KeptDeployment {
  explicit KeptDeployment(const std::string& name)
      : d(deploy::Deployment::create(name)), vm(fake_qemu(d.dir() / name)) {
    d.state().status = "kept";
    d.state().vms = {{name, vm.pid(), "tcg", "cold"}};
    d.save();
    d.release_runner_lock();
  }
  deploy::Deployment d;
  Child vm;
};

// The acceptance case of issue 9: whatever a directory holds, destroy -f of
// one that kestrel did not make refuses and deletes nothing.
TEST(Reaper, DestroyRefusesWhatIsNotOneOfOurDeployments) {
  RuntimeDir rt;
  TempDir outside("/tmp", "kestrel-unit-victim-");
  fs::path victim = outside.path() / "victim";
  fs::create_directories(victim / "src");
  write_file_atomic(victim / "deployment.json", R"({"version": 1})");
  write_file_atomic(victim / "src" / "precious", "data");
  EXPECT_THROW(cli::cmd_destroy({"-f", victim.string()}), Error);
  EXPECT_THROW(deploy::destroy_deployment(victim, Deadline::after(1s)), Error);
  EXPECT_THROW(deploy::remove_deployment_dir(victim), Error);
  EXPECT_TRUE(fs::exists(victim / "src" / "precious"));

  // A marker and a complete state file do not make it ours outside the runtime dir.
  auto real = deploy::Deployment::create("real-abc");
  fs::copy(real.dir() / deploy::kMarkerFile, victim / deploy::kMarkerFile);
  fs::copy(real.dir() / "deployment.json", victim / "deployment.json", fs::copy_options::overwrite_existing);
  EXPECT_NE(deploy::why_not_ours(victim), "");
  EXPECT_THROW(cli::cmd_destroy({"-f", victim.string()}), Error);

  // Inside the runtime dir: a directory kestrel did not make, or whose marker names another.
  fs::path stranger = rt.path() / "stranger";
  fs::create_directories(stranger / "src");
  write_file_atomic(stranger / "deployment.json", R"({"version": 1})");
  EXPECT_THROW(cli::cmd_destroy({"-f", stranger.string()}), Error);
  fs::copy(real.dir() / deploy::kMarkerFile, stranger / deploy::kMarkerFile);
  EXPECT_THROW(cli::cmd_destroy({"-f", stranger.string()}), Error);
  EXPECT_TRUE(fs::exists(stranger / "src"));
  // Nor is it listed, collected or swept.
  real.release_runner_lock();
  deploy::GcPolicy policy;
  policy.all = true;
  policy.grace_seconds = 0;
  deploy::collect_garbage(policy, false);
  EXPECT_TRUE(fs::exists(stranger / "src"));
  EXPECT_FALSE(fs::exists(real.dir()));
  // One bad target among good ones: nothing at all is destroyed.
  KeptDeployment good("good-abc");
  EXPECT_THROW(cli::cmd_destroy({"-f", good.d.dir().string(), "-f", victim.string()}), Error);
  EXPECT_TRUE(fs::exists(good.d.dir()));
  EXPECT_TRUE(alive(good.vm));
}

TEST(Reaper, OursMeansInTheRuntimeDirAndMadeByKestrel) {
  RuntimeDir rt;
  auto d = deploy::Deployment::create("ours-abc");
  EXPECT_EQ(deploy::why_not_ours(d.dir()), "");
  EXPECT_EQ(read_file(d.dir() / deploy::kMarkerFile), deploy::marker_text("ours-abc"));
  // Made by an older kestrel (no marker): every field kestrel writes, and runner.lock.
  fs::remove(d.dir() / deploy::kMarkerFile);
  EXPECT_EQ(deploy::why_not_ours(d.dir()), "");
  write_file_atomic(d.dir() / "deployment.json", R"({"version": 1, "status": "kept"})");
  EXPECT_NE(deploy::why_not_ours(d.dir()), "");
  // A path that is not resolved is not ours either: callers resolve first.
  EXPECT_NE(deploy::why_not_ours(rt.path() / "." / "ours-abc"), "");
}

// Item 3: through a symlinked parent, the QEMU is killed before its
// directory goes, and ls stays consistent.
TEST(Reaper, DestroyThroughASymlinkedParentKillsTheVm) {
  RuntimeDir rt;
  KeptDeployment k("linked-abc");
  TempDir links("/tmp", "kestrel-unit-links-");
  fs::create_directory_symlink(rt.path(), links.path() / "alias");
  testing::internal::CaptureStdout();
  EXPECT_EQ(cli::cmd_destroy({"-f", (links.path() / "alias" / "linked-abc").string()}), 0);
  std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(out, "destroyed " + k.d.dir().string() + " (kept)\n");
  EXPECT_TRUE(k.vm.wait(Deadline::after(5s)).has_value());
  EXPECT_FALSE(fs::exists(k.d.dir()));
  EXPECT_TRUE(fs::is_symlink(links.path() / "alias"));
  EXPECT_TRUE(deploy::list_deployments().empty());
}

// Item 3: destroy -f LINK destroys the deployment the link points to.
TEST(Reaper, DestroyOfALinkDestroysTheDeployment) {
  RuntimeDir rt;
  KeptDeployment k("target-abc");
  TempDir links("/tmp", "kestrel-unit-links-");
  fs::create_directory_symlink(k.d.dir(), links.path() / "link");
  testing::internal::CaptureStdout();
  EXPECT_EQ(cli::cmd_destroy({"-f", (links.path() / "link").string()}), 0);
  testing::internal::GetCapturedStdout();
  EXPECT_TRUE(k.vm.wait(Deadline::after(5s)).has_value());
  EXPECT_FALSE(fs::exists(k.d.dir()));
}

// A runtime dir reached through a symlink: deployments get one (resolved)
// path, the one QEMU's command line names, so destroy finds the QEMU.
TEST(Reaper, RuntimeDirIsResolved) {
  TempDir real("/tmp", "kestrel-unit-rt-");
  TempDir links("/tmp", "kestrel-unit-links-");
  fs::create_directory_symlink(real.path(), links.path() / "rt");
  ::setenv("KESTREL_RUNTIME_DIR", (links.path() / "rt" / "sub").c_str(), 1);
  {
    KeptDeployment k("viaalias-abc");
    EXPECT_EQ(k.d.dir(), real.path() / "sub" / "viaalias-abc");
    deploy::destroy_deployment(links.path() / "rt" / "sub" / "viaalias-abc", Deadline::after(5s));
    EXPECT_TRUE(k.vm.wait(Deadline::after(5s)).has_value());
    EXPECT_FALSE(fs::exists(k.d.dir()));
  }
  ::unsetenv("KESTREL_RUNTIME_DIR");
}

// Item 12: a deployment that is gone is an error for -f DIR and NAME alike.
TEST(Reaper, DestroyOfAGoneDeploymentIsAnError) {
  RuntimeDir rt;
  try {
    cli::cmd_destroy({"-f", (rt.path() / "gone-abc").string()});
    ADD_FAILURE() << "destroy -f of a missing directory succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such deployment"), std::string::npos) << e.what();
  }
  try {
    cli::cmd_destroy({"gone-abc"});
    ADD_FAILURE() << "destroy of a missing VM succeeded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no such deployment"), std::string::npos) << e.what();
  }
}

// Never lose track of a QEMU: its directory stays while it runs.
TEST(Reaper, RemovalRefusesWhileAQemuOfTheDeploymentRuns) {
  RuntimeDir rt;
  KeptDeployment k("busy-abc");
  EXPECT_THROW(deploy::remove_deployment_dir(k.d.dir()), Error);
  EXPECT_TRUE(fs::exists(k.d.dir()));
  EXPECT_TRUE(alive(k.vm));
  auto dying = deploy::kill_deployment_vms(k.d.dir(), &k.d.state(), false);
  EXPECT_EQ(dying.size(), 1u);
  deploy::wait_dead(dying, Deadline::after(5s), k.d.dir());
  k.vm.wait(Deadline::after(5s));  // reaped: no longer a process of the deployment
  deploy::remove_deployment_dir(k.d.dir());
  EXPECT_FALSE(fs::exists(k.d.dir()));
}

// Item 7: a guest's `chmod 000` directory in a deployment does not make gc
// fail forever. As a user (nobody, in a child process, when we are root):
// root needs no permission bits.
TEST(Reaper, GcRemovesADeploymentWithAChmod000Directory) {
  TempDir parent("/tmp", "kestrel-unit-rt-");
  ::chmod(parent.path().c_str(), 0777);
  auto body = [&] {
    ::setenv("KESTREL_RUNTIME_DIR", (parent.path() / "rt").c_str(), 1);
    auto d = deploy::Deployment::create("locked-abc");
    d.state().status = "running";
    d.save();
    fs::create_directories(d.dir() / "share" / "locked" / "inner");
    if (::chmod((d.dir() / "share" / "locked").c_str(), 0) != 0) return 1;
    d.release_runner_lock();  // orphaned
    deploy::GcPolicy policy;
    if (deploy::collect_garbage(policy, false).size() != 1) return 2;
    return fs::exists(d.dir()) ? 3 : 0;
  };
  int rc;
  if (::geteuid() != 0) {
    rc = body();
    ::unsetenv("KESTREL_RUNTIME_DIR");
  } else {
    pid_t pid = ::fork();
    if (pid == 0) {
      int code = 99;
      try {
        if (::setgid(65534) == 0 && ::setuid(65534) == 0) code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        code = 98;
      }
      ::_exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 97;
  }
  EXPECT_EQ(rc, 0);
}

// Item 17: numbers edited into deployment.json are unknown, never UB.
TEST(Reaper, TamperedNumbersAreUnknown) {
  RuntimeDir rt;
  auto d = deploy::Deployment::create("tamper-abc");
  d.release_runner_lock();
  auto state = [](const std::string& created, const std::string& pid, const std::string& status) {
    return R"({"version": 1, "status": "kept", "created": )" + created + R"(, "updated": )" + created +
           R"(, "runner_pid": )" + pid + R"(, "vms": [{"name": "tamper-abc", "pid": )" + pid +
           R"(}], "exit_status": )" + status + "}";
  };
  for (const auto& [created, pid, status] :
       std::vector<std::array<std::string, 3>>{{"-9223372036854775808", "-1", "-5"},
                                               {"9223372036854775807", "9223372036854775807", "4294967296"},
                                               {"18446744073709551615", "18446744073709551615", "1e300"},
                                               {"1e30", "1e300", "\"x\""},
                                               {"-1e300", "2.5", "256"}}) {
    auto s = deploy::State::from_json(state(created, pid, status), "f");
    EXPECT_EQ(s.created, 0) << created;
    EXPECT_EQ(s.updated, 0) << created;
    EXPECT_EQ(s.runner_pid, 0) << pid;
    ASSERT_EQ(s.vms.size(), 1u);
    EXPECT_EQ(s.vms[0].pid, 0) << pid;
    EXPECT_FALSE(s.exit_status.has_value()) << status;
    write_file_atomic(d.dir() / "deployment.json", state(created, pid, status));
    auto info = deploy::inspect(d.dir());
    EXPECT_GE(info.age_seconds, 0) << created;
    EXPECT_LT(info.age_seconds, 3600) << created;  // from the directory's mtime
    EXPECT_GT(info.state->created, 0);
  }
  EXPECT_THROW(deploy::State::from_json(R"({"version": 1e300})", "f"), Error);
  EXPECT_THROW(deploy::State::from_json(R"({"version": 1.5})", "f"), Error);
  EXPECT_THROW(deploy::State::from_json(R"({"status": "kept"})", "f"), Error);
  // A VM name that would reach outside the deployment is dropped.
  auto s = deploy::State::from_json(R"({"version": 1, "vms": [{"name": "../other", "pid": 5}]})", "f");
  EXPECT_EQ(s.vms.at(0).name, "");
  // A future `created` is age 0, not negative.
  write_file_atomic(d.dir() / "deployment.json", state("253402300799", "1", "0"));
  EXPECT_EQ(deploy::inspect(d.dir()).age_seconds, 0);
}

}  // namespace
}  // namespace kestrel

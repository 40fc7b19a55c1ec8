// Deployments as gc, destroy and the slot limiter see them: liveness,
// what counts as garbage, finding and killing a deployment's VMs, slots.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <thread>

#include "deploy/deployment.hpp"
#include "deploy/registry.hpp"
#include "deploy/slots.hpp"
#include "deploy/teardown.hpp"
#include "deploy_test_support.hpp"
#include "host/vm_exit.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"
#include "util/process.hpp"
#include "util/signals.hpp"

namespace kestrel {
namespace {

using namespace std::chrono_literals;

using test_support::alive;
using test_support::fake_qemu;
using test_support::RuntimeDir;

TEST(VmExit, FindsThePanicReason) {
  std::string log =
      "[    1.52] sysrq: Trigger a crash\n"
      "[    1.52] Kernel panic - not syncing: sysrq triggered crash\n"
      "[    1.53] CPU: 0 PID: 93 Comm: sh\n"
      "[    1.54] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---\n";
  EXPECT_EQ(host::find_panic(log), "sysrq triggered crash");
  EXPECT_EQ(host::find_panic("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009\r\n"),
            "Attempted to kill init! exitcode=0x00000009");
  EXPECT_EQ(host::find_panic("all is well\n"), std::nullopt);
}

TEST(VmExit, ExplainsHowQemuEnded) {
  TempDir dir("/tmp", "kestrel-unit-vm-");
  vm::VmPaths paths{dir.path()};
  EXPECT_EQ(host::explain_vm_exit(paths, W_EXITCODE(0, SIGKILL)), "QEMU was killed by signal 9 (SIGKILL)");
  EXPECT_EQ(host::explain_vm_exit(paths, W_EXITCODE(1, 0)), "QEMU exited with status 1");
  EXPECT_EQ(host::explain_vm_exit(paths, std::nullopt), "QEMU exited");
  write_file_atomic(paths.console_log(), "boot\nKernel panic - not syncing: VFS: Unable to mount root fs\n");
  EXPECT_EQ(host::explain_vm_exit(paths, W_EXITCODE(0, 0)), "the guest kernel panicked (VFS: Unable to mount root fs)");
}

TEST(Registry, LivenessFollowsTheRunnerLockAndTheVms) {
  RuntimeDir rt;
  auto d = deploy::Deployment::create("live-abc");
  d.state().status = "running";
  d.save();
  EXPECT_EQ(deploy::inspect(d.dir()).liveness, deploy::Liveness::kRunning);
  d.release_runner_lock();  // the runner died
  EXPECT_EQ(deploy::inspect(d.dir()).liveness, deploy::Liveness::kOrphaned);
  d.state().status = "kept";
  d.save();
  EXPECT_EQ(deploy::inspect(d.dir()).liveness, deploy::Liveness::kDead);  // no VM alive
  Child vm = fake_qemu(d.dir() / "live-abc");
  d.state().vms = {{"live-abc", vm.pid(), "tcg"}};
  d.save();
  auto info = deploy::inspect(d.dir());
  EXPECT_EQ(info.liveness, deploy::Liveness::kKept);
  EXPECT_EQ(info.live_pids, std::vector<int>{vm.pid()});
  d.state().status = "failed";
  d.state().vms.clear();
  d.save();
  EXPECT_EQ(deploy::inspect(d.dir()).liveness, deploy::Liveness::kDead);
}

TEST(Registry, GarbageRules) {
  deploy::DeploymentInfo info;
  info.state = deploy::State{};
  deploy::GcPolicy gc;
  deploy::GcPolicy sweep = gc;
  sweep.dead_at_once = false;
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  info.state->updated = now.count();

  info.liveness = deploy::Liveness::kRunning;
  EXPECT_FALSE(deploy::is_garbage(info, gc));
  info.liveness = deploy::Liveness::kOrphaned;
  EXPECT_TRUE(deploy::is_garbage(info, sweep));
  info.liveness = deploy::Liveness::kKept;
  EXPECT_FALSE(deploy::is_garbage(info, gc));
  deploy::GcPolicy all = gc;
  all.all = true;
  EXPECT_TRUE(deploy::is_garbage(info, all));
  info.liveness = deploy::Liveness::kDead;
  EXPECT_TRUE(deploy::is_garbage(info, gc));      // gc: leftovers of dead VMs at once
  EXPECT_FALSE(deploy::is_garbage(info, sweep));  // the sweep leaves a fresh failure's logs
  info.state->updated = now.count() - gc.keep_ttl_seconds;
  EXPECT_TRUE(deploy::is_garbage(info, sweep));
  info.liveness = deploy::Liveness::kKept;
  EXPECT_TRUE(deploy::is_garbage(info, gc));  // past its time to live
  // A directory without a state file: only after the grace period.
  deploy::DeploymentInfo half;
  half.liveness = deploy::Liveness::kDead;
  half.age_seconds = 1;
  EXPECT_FALSE(deploy::is_garbage(half, gc));
  half.age_seconds = gc.grace_seconds;
  EXPECT_TRUE(deploy::is_garbage(half, gc));
}

TEST(Teardown, FindsVmsByTheirCommandLineEvenWhenNotRecorded) {
  RuntimeDir rt;
  auto d = deploy::Deployment::create("scan-abc");
  auto other = deploy::Deployment::create("scan-abcd");  // a name that extends ours
  Child ours = fake_qemu(d.dir() / "scan-abc");
  Child theirs = fake_qemu(other.dir() / "scan-abcd");
  EXPECT_TRUE(deploy::find_vm_processes(d.dir(), &d.state(), false).empty());  // nothing recorded
  EXPECT_EQ(deploy::find_vm_processes(d.dir(), &d.state(), true), std::vector<int>{ours.pid()});
  d.release_runner_lock();
  deploy::destroy_deployment(d.dir(), Deadline::after(5s));
  EXPECT_FALSE(fs::exists(d.dir()));
  EXPECT_TRUE(ours.wait(Deadline::after(5s)).has_value());
  EXPECT_TRUE(alive(theirs));
}

TEST(Teardown, GcRemovesOrphansWithTheirVmsAndSparesRunningRuns) {
  RuntimeDir rt;
  auto orphan = deploy::Deployment::create("orphan-abc");
  orphan.state().status = "running";
  orphan.save();
  Child vm = fake_qemu(orphan.dir() / "orphan-abc");
  orphan.release_runner_lock();
  auto running = deploy::Deployment::create("running-abc");
  running.state().status = "running";
  running.save();
  Child running_vm = fake_qemu(running.dir() / "running-abc");

  deploy::GcPolicy policy;
  auto dry = deploy::collect_garbage(policy, true);
  ASSERT_EQ(dry.size(), 1u);
  EXPECT_TRUE(fs::exists(orphan.dir()));
  auto removed = deploy::collect_garbage(policy, false);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].dir, orphan.dir());
  EXPECT_EQ(removed[0].liveness, deploy::Liveness::kOrphaned);
  EXPECT_FALSE(fs::exists(orphan.dir()));
  EXPECT_TRUE(vm.wait(Deadline::after(5s)).has_value());
  EXPECT_TRUE(fs::exists(running.dir()));
  EXPECT_TRUE(alive(running_vm));
}

TEST(Teardown, RunGuardRemovesUnlessKeptAndKeepsFailedLogs) {
  RuntimeDir rt;
  fs::path gone, failed;
  {
    auto d = deploy::Deployment::create("guard-abc");
    gone = d.dir();
    deploy::RunGuard guard(d, nullptr);
  }
  EXPECT_FALSE(fs::exists(gone));
  {
    auto d = deploy::Deployment::create("guard-def");
    failed = d.dir();
    deploy::RunGuard guard(d, nullptr);
    guard.keep_failed(125);
  }
  ASSERT_TRUE(fs::exists(failed));
  auto info = deploy::inspect(failed);
  EXPECT_EQ(info.state->status, "failed");
  EXPECT_EQ(info.state->exit_status, 125);
  EXPECT_EQ(info.liveness, deploy::Liveness::kDead);
}

TEST(Slots, GiveDistinctSlotsAndAWaitEndsOnASignal) {
  RuntimeDir rt;
  SignalFd signals({SIGUSR1});
  int waits = 0;
  auto on_wait = [&](int) { ++waits; };
  deploy::Slot a = deploy::Slot::acquire(2, &signals, on_wait);
  deploy::Slot b = deploy::Slot::acquire(2, &signals, on_wait);
  EXPECT_TRUE(a.held() && b.held());
  EXPECT_NE(a.index(), b.index());
  EXPECT_EQ(waits, 0);
  ::raise(SIGUSR1);
  EXPECT_THROW(deploy::Slot::acquire(2, &signals, on_wait), Interrupted);
  EXPECT_EQ(waits, 1);
  // A slot given back is taken by the next waiter.
  std::thread release([&] {
    std::this_thread::sleep_for(50ms);
    a.release();
  });
  deploy::Slot c = deploy::Slot::acquire(2, &signals, on_wait);
  release.join();
  EXPECT_TRUE(c.held());
  EXPECT_EQ(waits, 2);
}

}  // namespace
}  // namespace kestrel

// How a VM's end is read: a crash of QEMU under KVM is a verdict on KVM, a
// kill from outside is not; a clone's console tail shows only its own lines.
#include "host/vm_exit.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include "host/machine.hpp"

namespace kestrel {
namespace {

// A wait status as waitpid(2) reports it.
int signaled(int signo) { return signo & 0x7f; }
int exited(int code) { return (code & 0xff) << 8; }

TEST(VmExit, QemuThatCrashedByItselfIsNotKilledFromOutside) {
  ASSERT_TRUE(WIFSIGNALED(signaled(SIGABRT)));
  EXPECT_FALSE(host::killed_from_outside(signaled(SIGABRT)));  // forced KVM on AMD with PVM
  EXPECT_FALSE(host::killed_from_outside(signaled(SIGSEGV)));
  EXPECT_FALSE(host::killed_from_outside(exited(1)));  // "failed to initialize kvm"
  EXPECT_FALSE(host::killed_from_outside(std::nullopt));
  EXPECT_TRUE(host::killed_from_outside(signaled(SIGKILL)));
  EXPECT_TRUE(host::killed_from_outside(signaled(SIGTERM)));
}

TEST(VmExit, CloneConsoleTailStopsAtTheRestoreLine) {
  std::string marker(host::kRestoredMarker);
  EXPECT_EQ(host::this_vms_console("template boot\n" + marker + "; the lines above are the template's boot\nmine\n"),
            "mine\n");
  EXPECT_EQ(host::this_vms_console("template boot\n" + marker + "; the lines above are the template's boot"), "");
  EXPECT_EQ(host::this_vms_console("a cold VM's line\n"), "a cold VM's line\n");
}

}  // namespace
}  // namespace kestrel

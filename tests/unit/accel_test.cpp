// Every host variant on every machine: fake hosts (a directory with dev/kvm,
// sys/module and proc/cpuinfo, as KESTREL_HOST_ROOT gives kestrel) read
// through vm::read_host_facts, then the accelerator chosen from them, its
// reason and doctor's advice.
#include "vm/accel.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "test_support.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::vm {
namespace {

using DevKvm = HostFacts::DevKvm;

bool has(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// A fake host's root. Nothing in it unless added.
class FakeHost {
 public:
  FakeHost() : dir_(fs::temp_directory_path(), "kestrel-host-") {
    // Readable by the unprivileged user that the no-permission variant runs as.
    ::chmod(dir_.path().c_str(), 0755);
  }
  const fs::path& root() const { return dir_.path(); }

  FakeHost& module(const std::string& name, const std::string& nested = "") {
    make_dirs(root() / "sys/module" / name / "parameters");
    if (!nested.empty()) write_file_atomic(root() / "sys/module" / name / "parameters/nested", nested + "\n");
    return *this;
  }
  FakeHost& dev_kvm(mode_t mode = 0666) {
    make_dirs(root() / "dev");
    write_file_atomic(root() / "dev/kvm", "", mode);
    ::chmod((root() / "dev/kvm").c_str(), mode);
    return *this;
  }
  FakeHost& cpu(const std::string& vendor, const std::string& flags) {
    make_dirs(root() / "proc/sys/kernel");
    std::string text;
    for (int cpu = 0; cpu < 2; ++cpu)
      text += "processor\t: " + std::to_string(cpu) + "\nvendor_id\t: " + vendor +
              "\nmodel name\t: Some CPU\nflags\t\t: fpu vme de pse " + flags + " lm\n\n";
    write_file_atomic(root() / "proc/cpuinfo", text);
    write_file_atomic(root() / "proc/sys/kernel/osrelease", "6.1.0-fake-amd64\n");
    return *this;
  }

 private:
  TempDir dir_;
};

// The five kinds of host this project's machines and its users' come in,
// and one with no KVM at all.
FakeHost intel_kvm() {
  FakeHost h;
  h.cpu("GenuineIntel", "vmx ept").module("kvm").module("kvm_intel", "N").dev_kvm();
  return h;
}
FakeHost amd_kvm() {
  FakeHost h;
  h.cpu("AuthenticAMD", "svm npt").module("kvm").module("kvm_amd", "1").dev_kvm();
  return h;
}
FakeHost pvm_with_dev_kvm() {
  FakeHost h;
  h.cpu("GenuineIntel", "hypervisor").module("kvm").module("kvm_pvm").dev_kvm();
  return h;
}
FakeHost pvm_without_dev_kvm() {
  FakeHost h;
  h.cpu("AuthenticAMD", "hypervisor").module("kvm").module("kvm_pvm");
  return h;
}
FakeHost dev_kvm_not_ours() {
  FakeHost h;
  h.cpu("GenuineIntel", "vmx").module("kvm").module("kvm_intel").dev_kvm(0600);
  return h;
}
FakeHost no_kvm(const std::string& flags) {
  FakeHost h;
  h.cpu("GenuineIntel", flags);
  return h;
}

// The facts as an unprivileged user reads them (root opens any file).
HostFacts read_as_unprivileged(const fs::path& root) {
  HostFacts facts = read_host_facts(root);
  std::string seen = test::as_unprivileged([&] {
    HostFacts f = read_host_facts(root);
    return std::to_string(static_cast<int>(f.dev_kvm)) + f.dev_kvm_error;
  });
  facts.dev_kvm = static_cast<DevKvm>(seen.at(0) - '0');
  facts.dev_kvm_error = seen.substr(1);
  return facts;
}

TEST(HostFacts, ReadsAFakeIntelHost) {
  FakeHost h = intel_kvm();
  HostFacts f = read_host_facts(h.root());
  EXPECT_EQ(f.dev_kvm, DevKvm::kUsable);
  EXPECT_TRUE(f.kvm && f.kvm_intel);
  EXPECT_FALSE(f.kvm_amd || f.kvm_pvm);
  EXPECT_EQ(f.nested, false);
  EXPECT_EQ(f.cpu_vendor, "GenuineIntel");
  EXPECT_TRUE(f.cpu_vmx);
  EXPECT_FALSE(f.cpu_svm || f.cpu_hypervisor);
  EXPECT_EQ(f.host_release, "6.1.0-fake-amd64");
  EXPECT_EQ(describe_host(f), "Intel CPU with VT-x; KVM modules: kvm kvm_intel (nested off); /dev/kvm usable");
}

TEST(HostFacts, AnEmptyRootIsAHostWithoutKvm) {
  FakeHost h;
  HostFacts f = read_host_facts(h.root());
  EXPECT_EQ(f.dev_kvm, DevKvm::kMissing);
  EXPECT_FALSE(f.kvm || f.kvm_intel || f.kvm_amd || f.kvm_pvm || f.cpu_vmx || f.cpu_svm);
  EXPECT_EQ(f.cpu_vendor, "");
  EXPECT_EQ(f.nested, std::nullopt);
  EXPECT_EQ(describe_host(f), "unknown CPU; KVM modules: none; no /dev/kvm");
}

TEST(HostFacts, FlagsAreWholeWords) {
  FakeHost h;
  h.cpu("AuthenticAMD", "svmx vmxe xsvm");  // none of them is svm or vmx
  HostFacts f = read_host_facts(h.root());
  EXPECT_FALSE(f.cpu_vmx || f.cpu_svm);
  EXPECT_EQ(f.cpu_vendor, "AuthenticAMD");
}

TEST(HostFacts, KestrelHostRootPointsTheSeamAtAFakeHost) {
  FakeHost h = amd_kvm();
  ASSERT_EQ(::setenv("KESTREL_HOST_ROOT", h.root().c_str(), 1), 0);
  EXPECT_EQ(host_root(), h.root());
  HostFacts f = read_host_facts();
  ::unsetenv("KESTREL_HOST_ROOT");
  EXPECT_TRUE(f.kvm_amd);
  EXPECT_EQ(f.nested, true);
  EXPECT_EQ(host_root(), fs::path("/"));
}

// ---- the accelerator of each variant ------------------------------------

TEST(Accel, IntelAndAmdKvmHostsGetKvm) {
  AccelDecision intel = decide_accel("", read_host_facts(intel_kvm().root()));
  EXPECT_EQ(intel.accel, Accel::kKvm);
  EXPECT_TRUE(intel.automatic);
  EXPECT_EQ(intel.reason, "KVM (kvm_intel)");
  AccelDecision amd = decide_accel("auto", read_host_facts(amd_kvm().root()));
  EXPECT_EQ(amd.accel, Accel::kKvm);
  EXPECT_EQ(amd.reason, "KVM (kvm_amd)");
}

TEST(Accel, PvmWithDevKvmGetsTcgAndTheReasonSaysPvm) {
  HostFacts f = read_host_facts(pvm_with_dev_kvm().root());
  EXPECT_TRUE(f.pvm_only());
  AccelDecision d = decide_accel("", f);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_TRUE(d.automatic);
  EXPECT_EQ(d.reason.rfind("TCG (software emulation): /dev/kvm is provided by kvm_pvm (PVM)", 0), 0u) << d.reason;
  EXPECT_TRUE(has(kvm_advice(f), "none on this host")) << kvm_advice(f);
  EXPECT_TRUE(has(kvm_failure_hint(f), "kvm_pvm"));
  // Forced KVM is the user's call on a host with a /dev/kvm.
  EXPECT_EQ(decide_accel("kvm", f).accel, Accel::kKvm);
}

TEST(Accel, PvmWithoutDevKvmGetsTcgAndSaysThereIsNoDevKvm) {
  HostFacts f = read_host_facts(pvm_without_dev_kvm().root());
  EXPECT_EQ(f.dev_kvm, DevKvm::kMissing);
  AccelDecision d = decide_accel("", f);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_EQ(d.reason,
            "TCG (software emulation): there is no /dev/kvm (kvm_pvm is loaded: PVM, which boots only PVM-enabled "
            "guest kernels even where it makes one)");
  EXPECT_TRUE(has(kvm_advice(f), "none on this host"));
  std::string forced = test::error_message([&] { decide_accel("kvm", f); });
  EXPECT_TRUE(has(forced, "KESTREL_ACCEL=kvm, but there is no /dev/kvm")) << forced;
}

TEST(Accel, DevKvmWithoutPermissionGetsTcgAndTheKvmGroupFix) {
  FakeHost h = dev_kvm_not_ours();
  HostFacts f = read_as_unprivileged(h.root());
  ASSERT_EQ(f.dev_kvm, DevKvm::kNoAccess) << f.dev_kvm_error;
  AccelDecision d = decide_accel("", f);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_EQ(d.reason, "TCG (software emulation): /dev/kvm is not accessible to you (Permission denied)");
  EXPECT_EQ(kvm_advice(f), "sudo usermod -aG kvm $USER  (then log in again)");
  std::string forced = test::error_message([&] { decide_accel("kvm", f); });
  EXPECT_TRUE(has(forced, "add yourself to the kvm group")) << forced;
}

TEST(Accel, NoKvmAtAll) {
  HostFacts vmx = read_host_facts(no_kvm("vmx").root());
  AccelDecision d = decide_accel("", vmx);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_EQ(d.reason, "TCG (software emulation): there is no /dev/kvm (no KVM module is loaded)");
  EXPECT_EQ(kvm_advice(vmx), "sudo modprobe kvm_intel");
  EXPECT_EQ(kvm_advice(read_host_facts(no_kvm("svm").root())), "sudo modprobe kvm_amd");
  EXPECT_TRUE(has(kvm_advice(read_host_facts(no_kvm("hypervisor").root())), "nested virtualization"));
  EXPECT_TRUE(has(kvm_advice(read_host_facts(no_kvm("").root())), "VT-x/AMD-V"));
}

TEST(Accel, DevKvmThatDoesNotOpen) {
  FakeHost h = intel_kvm();
  fs::remove(h.root() / "dev/kvm");
  make_dirs(h.root() / "dev/kvm");  // opening a directory read-write fails (EISDIR)
  HostFacts f = read_host_facts(h.root());
  EXPECT_EQ(f.dev_kvm, DevKvm::kBroken);
  AccelDecision d = decide_accel("", f);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_TRUE(has(d.reason, "/dev/kvm exists but does not open (Is a directory)")) << d.reason;
}

TEST(Accel, KvmModulesWithoutDevKvm) {
  FakeHost h = intel_kvm();
  fs::remove(h.root() / "dev/kvm");
  HostFacts f = read_host_facts(h.root());
  AccelDecision d = decide_accel("", f);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_TRUE(has(d.reason, "there is no /dev/kvm, though kvm_intel is loaded")) << d.reason;
  EXPECT_TRUE(has(kvm_advice(f), "dmesg")) << kvm_advice(f);
}

TEST(Accel, DevKvmWithoutAKnownModule) {
  FakeHost h;
  h.dev_kvm();
  AccelDecision d = decide_accel("", read_host_facts(h.root()));
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_TRUE(has(d.reason, "neither kvm_intel nor kvm_amd is loaded"));
}

TEST(Accel, QemuWithoutKvmMeansTcg) {
  HostFacts f = read_host_facts(intel_kvm().root());
  f.qemu_accels = std::vector<std::string>{"tcg"};
  AccelDecision d = decide_accel("", f);
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_EQ(d.reason, "TCG (software emulation): QEMU was built without KVM (its accelerators: tcg)");
  EXPECT_TRUE(has(kvm_advice(f), "qemu-system-x86")) << kvm_advice(f);
  std::string forced = test::error_message([&] { decide_accel("kvm", f); });
  EXPECT_EQ(forced, "KESTREL_ACCEL=kvm, but QEMU was built without KVM (its accelerators: tcg)");
  // A QEMU that has KVM changes nothing.
  f.qemu_accels = std::vector<std::string>{"tcg", "kvm"};
  EXPECT_EQ(decide_accel("", f).accel, Accel::kKvm);
}

TEST(Accel, RememberedKvmFailureMeansTcg) {
  HostFacts f = read_host_facts(intel_kvm().root());
  AccelDecision d = decide_accel("", f, std::string("no agent greeting within 10 s"));
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_TRUE(has(d.reason, "KVM failed to boot here before (no agent greeting within 10 s)"));
  // ...unless the user insists.
  EXPECT_EQ(decide_accel("kvm", f, std::string("no greeting")).accel, Accel::kKvm);
}

TEST(Accel, ForcedValues) {
  HostFacts intel = read_host_facts(intel_kvm().root());
  EXPECT_EQ(decide_accel("tcg", intel).accel, Accel::kTcg);
  EXPECT_FALSE(decide_accel("tcg", intel).automatic);
  AccelDecision forced = decide_accel("kvm", intel);
  EXPECT_EQ(forced.accel, Accel::kKvm);
  EXPECT_FALSE(forced.automatic);
  EXPECT_THROW(decide_accel("kvm", HostFacts{}), Error);
  EXPECT_EQ(test::error_message([&] { decide_accel("xen", intel); }), "KESTREL_ACCEL=xen: expected kvm, tcg or auto");
}

TEST(Accel, VerdictKeyNamesHostQemuAndGuest) {
  HostFacts f = read_host_facts(intel_kvm().root());
  EXPECT_EQ(kvm_verdict_key(f, "7.2.22", "6.1.0-28-amd64"), "host=6.1.0-fake-amd64 qemu=7.2.22 guest=6.1.0-28-amd64");
  EXPECT_EQ(kvm_failure_hint(f).find("kvm_pvm"), std::string::npos);
}

}  // namespace
}  // namespace kestrel::vm

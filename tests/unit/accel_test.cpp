#include "vm/accel.hpp"

#include <gtest/gtest.h>

#include "util/error.hpp"

namespace kestrel::vm {
namespace {

HostFacts pvm_host() {
  HostFacts f;
  f.dev_kvm_usable = true;
  f.kvm_pvm = true;
  return f;
}

HostFacts intel_host() {
  HostFacts f;
  f.dev_kvm_usable = true;
  f.kvm_intel = true;
  return f;
}

TEST(Accel, PvmHostGetsTcgAndTheReasonSaysPvm) {
  AccelDecision d = decide_accel("", pvm_host());
  EXPECT_EQ(d.accel, Accel::kTcg);
  EXPECT_TRUE(d.automatic);
  EXPECT_NE(d.reason.find("PVM"), std::string::npos);
  EXPECT_EQ(decide_accel("auto", pvm_host()).accel, Accel::kTcg);
}

TEST(Accel, RealKvmIsChosenAutomatically) {
  AccelDecision d = decide_accel("", intel_host());
  EXPECT_EQ(d.accel, Accel::kKvm);
  EXPECT_TRUE(d.automatic);
}

TEST(Accel, RememberedKvmFailureMeansTcg) {
  HostFacts f = intel_host();
  f.kvm_failed_before = "no agent greeting within 10 s";
  EXPECT_EQ(decide_accel("", f).accel, Accel::kTcg);
  // ...unless the user insists.
  EXPECT_EQ(decide_accel("kvm", f).accel, Accel::kKvm);
}

TEST(Accel, NoDevKvmMeansTcg) {
  HostFacts f;
  f.kvm_intel = true;
  EXPECT_EQ(decide_accel("", f).accel, Accel::kTcg);
}

TEST(Accel, ForcedValues) {
  EXPECT_EQ(decide_accel("tcg", intel_host()).accel, Accel::kTcg);
  EXPECT_FALSE(decide_accel("tcg", intel_host()).automatic);
  AccelDecision forced = decide_accel("kvm", pvm_host());
  EXPECT_EQ(forced.accel, Accel::kKvm);
  EXPECT_FALSE(forced.automatic);
  EXPECT_THROW(decide_accel("kvm", HostFacts{}), Error);
  EXPECT_THROW(decide_accel("xen", intel_host()), Error);
}

TEST(Accel, FailureHintExplainsPvm) {
  EXPECT_NE(kvm_failure_hint(pvm_host()).find("kvm_pvm"), std::string::npos);
  EXPECT_EQ(kvm_failure_hint(intel_host()).find("kvm_pvm"), std::string::npos);
}

}  // namespace
}  // namespace kestrel::vm

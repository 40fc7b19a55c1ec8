// What a process may use inside and outside a Slurm job (util/allocation):
// environments as slurmstepd sets them, faked.
#include "util/allocation.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace kestrel {
namespace {

Allocation with(const std::map<std::string, std::string>& vars, int affinity = 16) {
  return allocation_from(
      [&](const char* name) {
        auto it = vars.find(name);
        return it == vars.end() ? static_cast<const char*>(nullptr) : it->second.c_str();
      },
      affinity);
}

TEST(Allocation, OutsideSlurmTheAffinity) {
  Allocation a = with({{"SLURM_CPUS_ON_NODE", "2"}}, 8);  // no job: ignored
  EXPECT_EQ(a.cpus, 8);
  EXPECT_EQ(a.pool, "");
  EXPECT_EQ(a.mem_mib, std::nullopt);
  EXPECT_EQ(with({}, 0).cpus, 1);
}

TEST(Allocation, ABatchScriptGetsTheJobsCpusOnTheNode) {
  Allocation a = with(
      {{"SLURM_JOB_ID", "42"}, {"SLURMD_NODENAME", "n7"}, {"SLURM_CPUS_ON_NODE", "4"}, {"SLURM_MEM_PER_NODE", "8192"}});
  EXPECT_EQ(a.cpus, 4);
  EXPECT_EQ(a.job, "42");
  EXPECT_EQ(a.node, "n7");
  EXPECT_EQ(a.pool, "42");
  EXPECT_EQ(a.mem_mib, 8192u);
  // Never more than the affinity allows.
  EXPECT_EQ(with({{"SLURM_JOB_ID", "42"}, {"SLURM_CPUS_ON_NODE", "64"}}, 2).cpus, 2);
}

TEST(Allocation, AStepsTaskGetsItsShare) {
  std::map<std::string, std::string> step = {{"SLURM_JOB_ID", "42"},        {"SLURM_STEP_ID", "0"},
                                             {"SLURM_LOCALID", "1"},        {"SLURM_NODEID", "1"},
                                             {"SLURM_CPUS_ON_NODE", "6"},   {"SLURM_STEP_TASKS_PER_NODE", "1,3(x2)"},
                                             {"SLURM_MEM_PER_NODE", "3000"}};
  Allocation a = with(step);
  EXPECT_EQ(a.cpus, 2);  // 6 CPUs among the 3 tasks of node 1
  EXPECT_EQ(a.pool, "42.0.1");
  EXPECT_EQ(a.mem_mib, 1000u);
  step["SLURM_CPUS_PER_TASK"] = "3";
  EXPECT_EQ(with(step).cpus, 3);
  step["SLURM_MEM_PER_CPU"] = "512";
  EXPECT_EQ(with(step).mem_mib, 1536u);
}

TEST(Allocation, DefaultVmMemoryFitsTheTask) {
  EXPECT_EQ(fit_vm_memory(1024, std::nullopt), 1024u);
  EXPECT_EQ(fit_vm_memory(1024, 8192u), 1024u);
  EXPECT_EQ(fit_vm_memory(1024, 1024u), 768u);
  EXPECT_EQ(fit_vm_memory(1024, 600u), 344u);
  EXPECT_EQ(fit_vm_memory(1024, 300u), 256u);  // never below 256
  EXPECT_EQ(fit_vm_memory(1024, 0u), 256u);
}

TEST(Allocation, MalformedValuesAreIgnored) {
  for (const char* bad : {"", "x", "-1", "4x", "99999999999999999999999"}) {
    Allocation a = with({{"SLURM_JOB_ID", "1"}, {"SLURM_CPUS_ON_NODE", bad}, {"SLURM_MEM_PER_NODE", bad}}, 3);
    EXPECT_EQ(a.cpus, 3) << bad;
    EXPECT_EQ(a.mem_mib, std::nullopt) << bad;
  }
  for (const char* bad : {"2(x", "2(x0)", "(x2)", "a,b", ""}) {
    Allocation a = with({{"SLURM_JOB_ID", "1"},
                         {"SLURM_STEP_ID", "0"},
                         {"SLURM_NODEID", "0"},
                         {"SLURM_CPUS_ON_NODE", "4"},
                         {"SLURM_STEP_TASKS_PER_NODE", bad}});
    EXPECT_EQ(a.cpus, 4) << bad;  // one task assumed
  }
  // A node index past the list: one task.
  EXPECT_EQ(with({{"SLURM_JOB_ID", "1"},
                  {"SLURM_STEP_ID", "0"},
                  {"SLURM_NODEID", "5"},
                  {"SLURM_CPUS_ON_NODE", "4"},
                  {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"}})
                .cpus,
            4);
}

}  // namespace
}  // namespace kestrel

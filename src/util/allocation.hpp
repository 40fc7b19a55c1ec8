// What this process may use of its machine: the CPUs its affinity allows,
// and inside a Slurm job (docs/scale-out.md) no more than the job step's
// allocation on this node, which Slurm states in SLURM_* variables and which
// `nproc` does not show where no CPU binding is configured (task/none).
// VM slots, vCPU limits and build jobs all count from here.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace kestrel {

struct Allocation {
  int cpus = 1;  // at least 1
  // The memory of the job on this node, for this task (MiB); nullopt
  // outside Slurm or when the job names none.
  std::optional<uint64_t> mem_mib;
  // Outside Slurm all "": the machine's own pool of slots. Inside, `pool`
  // names this task's share ("job 42", "job 42 step 0 task 1"): tasks of one
  // node share no slots, each its own CPUs.
  std::string job;   // SLURM_JOB_ID
  std::string node;  // SLURMD_NODENAME
  std::string pool;  // "" outside Slurm, else e.g. "42.0.1" (job.step.task) or "42" (the batch script)
};

using EnvLookup = std::function<const char*(const char*)>;

// The allocation of a process whose affinity allows `affinity_cpus` CPUs
// and whose environment `env` gives. Rules, where SLURM_JOB_ID is set:
// a job step's task (SLURM_STEP_ID) gets SLURM_CPUS_PER_TASK, else its
// share of SLURM_CPUS_ON_NODE among the step's tasks on this node
// (SLURM_STEP_TASKS_PER_NODE, e.g. "2(x3),1", at SLURM_NODEID); a batch
// script gets SLURM_CPUS_ON_NODE; never more than `affinity_cpus`. Memory:
// SLURM_MEM_PER_CPU x CPUs, else SLURM_MEM_PER_NODE shared among the tasks.
// Malformed values are ignored (the machine's count stands).
Allocation allocation_from(const EnvLookup& env, int affinity_cpus);

// A VM's default memory (`mib`, not set by the user) in a task that has
// `task_mib`: no more than the task's memory less 256 MiB for QEMU and its
// translation cache, and at least 256 MiB; unchanged when the task's memory
// is unknown. A memory the user set is theirs to keep.
uint32_t fit_vm_memory(uint32_t mib, std::optional<uint64_t> task_mib);

// This process's: its affinity and environment.
Allocation current_allocation();

// The CPUs sched_getaffinity(2) allows this process (at least 1).
int affinity_cpus();

}  // namespace kestrel

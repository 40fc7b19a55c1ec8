// The host-wide slot limiter: at most N VMs of this user run tests at once.
// A slot is an flock on <runtime>/.slots/slot.K; the kernel drops it when its
// holder dies, so a killed runner never leaks a slot. Waiters queue on
// <runtime>/.slots/queue and only the head of the queue polls the slots.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "util/deadline.hpp"
#include "util/lockfile.hpp"
#include "util/signals.hpp"

namespace kestrel::deploy {

// $KESTREL_SLOTS if set (>= 1; 0 means automatic), else one per CPU this
// process may use (in a Slurm job: its task's CPUs, util/allocation.hpp),
// capped so that the VMs' memory (`mem_mib` each plus overhead) fits in half
// of the available memory (in a Slurm job at most its task's memory).
int default_slot_count(uint32_t mem_mib);

// <runtime>/.slots, or in a Slurm job <runtime>/.slots/slurm-JOB[.STEP.TASK]:
// each task of a job its own pool, sized to its own allocation.
std::filesystem::path slots_dir();

class Slot {
 public:
  Slot() = default;
  // Takes a free slot among `count`, waiting as long as needed. `on_wait` is
  // called once if we have to wait. A signal on `signals` (if given) aborts
  // the wait with Interrupted.
  static Slot acquire(int count, SignalFd* signals, const std::function<void(int busy)>& on_wait);

  bool held() const { return lock_.locked(); }
  int index() const { return index_; }
  void release() { lock_.unlock(); }

 private:
  LockFile lock_;
  int index_ = -1;
};

}  // namespace kestrel::deploy

#include "deploy/slots.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "deploy/deployment.hpp"
#include "util/allocation.hpp"
#include "util/error.hpp"
#include "util/fs.hpp"

namespace kestrel::deploy {

namespace {

uint64_t available_memory_mib() {
  auto text = read_file_if_exists("/proc/meminfo");
  if (!text) return 0;
  auto pos = text->find("MemAvailable:");
  if (pos == std::string::npos) return 0;
  return std::strtoull(text->c_str() + pos + 13, nullptr, 10) / 1024;
}

}  // namespace

fs::path slots_dir() {
  fs::path dir = runtime_dir() / ".slots";  // hidden: not a deployment
  std::string pool = current_allocation().pool;
  if (pool.empty()) return dir;
  // A Slurm task's own pool: tasks and jobs on one node never share slots.
  for (char& c : pool)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '.' || c == '_' || c == '-')) c = '_';
  return dir / ("slurm-" + pool.substr(0, 100));
}

int default_slot_count(uint32_t mem_mib) {
  if (const char* env = std::getenv("KESTREL_SLOTS"); env && *env) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (*end || n < 0 || n > 4096) fail("KESTREL_SLOTS={}: expected a number from 0 (automatic) to 4096", env);
    if (n > 0) return static_cast<int>(n);
  }
  // The CPUs this process may use: inside a Slurm job, its task's share.
  Allocation allocation = current_allocation();
  int n = allocation.cpus;
  // What the VMs may take: half of the memory available, and no more than a
  // Slurm task's own memory.
  uint64_t budget = available_memory_mib() / 2;
  if (allocation.mem_mib) budget = budget > 0 ? std::min(budget, *allocation.mem_mib) : *allocation.mem_mib;
  if (budget > 0) {
    // A VM rarely touches all its memory, but QEMU and TCG's translation cache add some.
    uint64_t per_vm = mem_mib / 2 + 256;
    n = std::min<int>(n, static_cast<int>(std::max<uint64_t>(1, budget / per_vm)));
  }
  return n;
}

Slot Slot::acquire(int count, SignalFd* signals, const std::function<void(int busy)>& on_wait) {
  fs::path dir = slots_dir();
  make_dirs(dir, 0700);
  auto try_all = [&](Slot& slot) {
    for (int k = 0; k < count; ++k) {
      slot.lock_ = LockFile::try_lock(dir / ("slot." + std::to_string(k)));
      if (slot.lock_.locked()) {
        slot.index_ = k;
        return true;
      }
    }
    return false;
  };
  auto pause = [&](int ms) {
    if (signals)
      signals->sleep_or_throw(ms, SIGWINCH);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  };
  Slot slot;
  if (try_all(slot)) return slot;
  if (on_wait) on_wait(count);
  // Queue up: only the head of the queue scans the slots; the others wait on
  // the queue lock, checking it (and for signals) every 20 ms.
  LockFile queue;
  while (!(queue = LockFile::try_lock(dir / "queue")).locked()) pause(20);
  int ms = 1;
  while (!try_all(slot)) {
    pause(ms);
    ms = std::min(ms * 2, 10);
  }
  return slot;
}

}  // namespace kestrel::deploy

#include "util/allocation.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string_view>

#include "util/strings.hpp"

namespace kestrel {

namespace {

std::optional<uint64_t> number(const char* text) {
  if (!text || !*text) return std::nullopt;
  std::string_view s(text);
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return n;
}

// Slurm's compressed list of tasks per node, "2(x3),1": the count of node
// `index` (0-based); nullopt when malformed or too short.
std::optional<uint64_t> tasks_on_node(const char* list, uint64_t index) {
  if (!list) return std::nullopt;
  uint64_t at = 0;
  for (const auto& item : split(list, ',')) {
    std::string_view it = item;
    uint64_t repeat = 1;
    if (size_t open = it.find("(x"); open != std::string_view::npos) {
      if (!it.ends_with(")")) return std::nullopt;
      auto r = number(std::string(it.substr(open + 2, it.size() - open - 3)).c_str());
      if (!r || *r == 0) return std::nullopt;
      repeat = *r;
      it = it.substr(0, open);
    }
    auto n = number(std::string(it).c_str());
    if (!n) return std::nullopt;
    if (index < at + repeat) return n;
    at += repeat;
  }
  return std::nullopt;
}

}  // namespace

Allocation allocation_from(const EnvLookup& env, int affinity) {
  Allocation a;
  a.cpus = std::max(1, affinity);
  const char* job = env("SLURM_JOB_ID");
  if (!job || !*job) return a;
  a.job = job;
  if (const char* node = env("SLURMD_NODENAME")) a.node = node;
  a.pool = a.job;
  std::optional<uint64_t> cpus;
  uint64_t tasks = 1;
  const char* step = env("SLURM_STEP_ID");
  if (step && *step) {
    a.pool += std::string(".") + step + "." + (env("SLURM_LOCALID") ? env("SLURM_LOCALID") : "0");
    tasks = tasks_on_node(env("SLURM_STEP_TASKS_PER_NODE"), number(env("SLURM_NODEID")).value_or(0)).value_or(1);
    tasks = std::max<uint64_t>(1, tasks);
    cpus = number(env("SLURM_CPUS_PER_TASK"));
    if (!cpus)
      if (auto on_node = number(env("SLURM_CPUS_ON_NODE"))) cpus = std::max<uint64_t>(1, *on_node / tasks);
  } else {
    cpus = number(env("SLURM_CPUS_ON_NODE"));
  }
  if (cpus && *cpus > 0) a.cpus = static_cast<int>(std::min<uint64_t>(*cpus, static_cast<uint64_t>(a.cpus)));
  if (auto per_cpu = number(env("SLURM_MEM_PER_CPU")); per_cpu && *per_cpu > 0)
    a.mem_mib = *per_cpu * static_cast<uint64_t>(a.cpus);
  else if (auto per_node = number(env("SLURM_MEM_PER_NODE")); per_node && *per_node > 0)
    a.mem_mib = *per_node / tasks;
  return a;
}

uint32_t fit_vm_memory(uint32_t mib, std::optional<uint64_t> task_mib) {
  if (!task_mib) return mib;
  uint64_t room = *task_mib > 512 ? *task_mib - 256 : 256;  // never below 256
  return static_cast<uint32_t>(std::min<uint64_t>(mib, room));
}

int affinity_cpus() {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

Allocation current_allocation() {
  return allocation_from([](const char* name) { return std::getenv(name); }, affinity_cpus());
}

}  // namespace kestrel

// The guest's OOM killer, as a program's EXIT reports it (docs/protocol.md,
// "The program's end"): what it ended while the program ran, from the
// kernel's count of OOM kills (/proc/vmstat's oom_kill) and its log
// (/dev/kmsg).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kestrel::agent {

// oom_kill of a /proc/vmstat text; nullopt when it has none (a kernel
// without CONFIG_VM_EVENT_COUNTERS, such as the lean one).
std::optional<uint64_t> parse_oom_kill_count(std::string_view vmstat);

// Where things stood when a program started: the kill count, if the kernel
// keeps one, and the time since boot in microseconds (the clock of the
// kernel's log records).
struct OomMark {
  std::optional<uint64_t> kills;
  uint64_t usec = 0;
};
OomMark oom_mark(const std::string& vmstat = "/proc/vmstat");
// The time alone (no kill count): what a program's start takes, since a read
// of /proc/vmstat costs milliseconds of fresh translation under TCG on every
// run; its EXIT asks only when it failed (oom_kills_since with a mark
// without a count: "" at once while the kernel counts no kill since boot).
OomMark oom_mark_time();

// A kernel log line "...Out of memory: Killed process 312 (alloc)
// total-vm:..., anon-rss:411648kB, file-rss:..., shmem-rss:..." (or the
// memory cgroup's "Memory cgroup out of memory: ...") as "process 312
// (alloc, 402 MiB resident)"; nullopt for any other line.
std::optional<std::string> describe_oom_kill(std::string_view line);

// What the OOM killer ended since `before` ("" for nothing): with a kill
// count, "" at once when it has not grown (the usual case: one read of
// vmstat), else the last kills the kernel's log (`kmsg`) describes; without
// one, "" at once when vmstat counts no kill since boot, else the kills the
// log records at or after before.usec. At most 4 named
// ("and N more" for the rest, "N processes" when the log tells of none),
// joined with "; ", at most proto::kMaxOomText bytes.
std::string oom_kills_since(const OomMark& before, const std::string& vmstat = "/proc/vmstat",
                            const std::string& kmsg = "/dev/kmsg");

}  // namespace kestrel::agent

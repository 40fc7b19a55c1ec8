// The guest's OOM killer, as a program's EXIT reports it (docs/protocol.md,
// "The program's end"): how many processes it has ended since boot
// (/proc/vmstat's oom_kill), and which, from the kernel's log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kestrel::agent {

// oom_kill of a /proc/vmstat text; 0 when it has none.
uint64_t parse_oom_kill_count(std::string_view vmstat);
// The count now; 0 when /proc/vmstat cannot be read.
uint64_t oom_kill_count(const std::string& vmstat = "/proc/vmstat");

// A kernel log line "...Out of memory: Killed process 312 (alloc)
// total-vm:..., anon-rss:411648kB, file-rss:..., shmem-rss:..." (or the
// memory cgroup's "Memory cgroup out of memory: ...") as "process 312
// (alloc, 402 MiB resident)"; nullopt for any other line.
std::optional<std::string> describe_oom_kill(std::string_view line);

// What the OOM killer ended since the count was `before` (""
// when the count has not grown): the last kills the kernel's log
// (`kmsg`, /dev/kmsg) describes, joined with "; ", at most
// proto::kMaxOomText bytes; "a process" when the log says nothing of them.
std::string oom_kills_since(uint64_t before, const std::string& vmstat = "/proc/vmstat",
                            const std::string& kmsg = "/dev/kmsg");

}  // namespace kestrel::agent

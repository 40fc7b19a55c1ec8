// A log file that never grows past a cap: what a VM's console prints goes
// through one (QEMU writes the console into a pipe; `kestrel-agent
// console-log` on the host copies it into console.log), so a guest that
// floods its console for hours cannot fill the host's disk or tmpfs.
//
// The file keeps its start (the boot, the agent's ready line, SETUP) and
// the latest output; what lay between is replaced by one line that says how
// much was dropped. Each trim writes the kept parts to a new file and
// renames it over the log: a reader sees the old whole or the new whole.
// The writer holds an exclusive flock on the log while it copies: who reads
// the log after the VM ended takes a shared one first, so it reads the last
// bytes too (settle_console_log in vm/qemu.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace kestrel {

constexpr uint64_t kDefaultConsoleLogMax = 16ull << 20;
constexpr uint64_t kMinConsoleLogMax = 64ull << 10;

// The line put where output was dropped, for `dropped` bytes in all.
std::string dropped_marker(uint64_t dropped, uint64_t max_bytes);

class CappedLog {
 public:
  // Appends to `file` (what it holds counts as its start; created by the
  // first write if missing). `max_bytes` is at least kMinConsoleLogMax.
  CappedLog(std::filesystem::path file, uint64_t max_bytes);
  CappedLog(const CappedLog&) = delete;
  CappedLog& operator=(const CappedLog&) = delete;
  ~CappedLog();

  // Appends, trimming first when the file would pass the cap. Errors (a
  // full disk, a removed directory) drop the data and count it as dropped:
  // the writer on the other side must never block on us.
  void write(std::string_view data);

  uint64_t size() const { return size_; }
  uint64_t dropped() const { return dropped_; }

 private:
  void trim();
  void open_file();

  std::filesystem::path file_;
  uint64_t max_;
  uint64_t head_;  // bytes kept from the start
  uint64_t tail_;  // bytes of the latest output a trim keeps
  int fd_ = -1;
  bool opened_ = false;  // tried: fd_ is the file, or -1 if it cannot be
  uint64_t size_ = 0;
  uint64_t dropped_ = 0;
  uint64_t marker_len_ = 0;  // the marker's length in the file now (0: none yet)
};

// Copies `in_fd` to a CappedLog of `file` until end of file. Returns 0, or
// 1 after an error reading `in_fd`.
int copy_to_capped_log(int in_fd, const std::filesystem::path& file, uint64_t max_bytes);

// Parses a size for the cap: bytes, or a number with K, M or G; nullopt if
// it is not one or is below kMinConsoleLogMax.
std::optional<uint64_t> parse_log_max(std::string_view text);

}  // namespace kestrel

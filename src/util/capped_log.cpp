#include "util/capped_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <optional>
#include <vector>

#include "util/io.hpp"

namespace kestrel {

namespace fs = std::filesystem;

namespace {

std::string mib(uint64_t bytes) {
  return std::to_string(bytes >> 20) + "." + std::to_string(((bytes & ((1u << 20) - 1)) * 10) >> 20) + " MiB";
}

}  // namespace

std::string dropped_marker(uint64_t dropped, uint64_t max_bytes) {
  return "\n[kestrel: " + std::to_string(dropped) +
         " bytes of console output dropped here: console.log keeps its start and the latest output, at most " +
         mib(max_bytes) + " (KESTREL_CONSOLE_LOG_MAX)]\n";
}

CappedLog::CappedLog(fs::path file, uint64_t max_bytes)
    : file_(std::move(file)), max_(std::max(max_bytes, kMinConsoleLogMax)), head_(max_ / 8), tail_(max_ / 4) {
  // A log that is there (a clone's starts with its template's) is ours from
  // the start; a missing one is made by the first output only: a QEMU that
  // never ran leaves no console log to point at.
  if (::access(file_.c_str(), F_OK) == 0) open_file();
}

void CappedLog::open_file() {
  fd_ = ::open(file_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  opened_ = true;
  if (fd_ < 0) return;
  // Held while we copy: a reader after the VM's end waits for the last bytes.
  ::flock(fd_, LOCK_EX);
  struct stat st {};
  if (::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
}

CappedLog::~CappedLog() {
  if (fd_ >= 0) ::close(fd_);
}

void CappedLog::write(std::string_view data) {
  if (data.empty()) return;
  if (!opened_) open_file();
  if (fd_ < 0) {
    dropped_ += data.size();
    return;
  }
  // A piece larger than half the cap: only its end is the latest. After a
  // trim (an eighth, the marker, a quarter) half the cap always fits.
  if (uint64_t half = max_ / 2; data.size() > half) {
    dropped_ += data.size() - half;
    data = data.substr(data.size() - half);
  }
  if (size_ + data.size() > max_) trim();
  if (try_write_all(fd_, data) != 0) {
    dropped_ += data.size();
    struct stat st {};
    if (::fstat(fd_, &st) == 0) size_ = static_cast<uint64_t>(st.st_size);
    return;
  }
  size_ += data.size();
}

// head + marker + the latest `tail_` bytes, into a new file renamed over the
// log. On failure the log is cut to its head and the marker instead.
void CappedLog::trim() {
  uint64_t head = std::min(head_, size_);
  uint64_t keep = std::min(tail_, size_ - head);
  uint64_t cut_from = head, cut_to = size_ - keep;  // [cut_from, cut_to) goes
  uint64_t cut = cut_to - cut_from;
  dropped_ += cut > marker_len_ ? cut - marker_len_ : 0;
  std::string marker = dropped_marker(dropped_, max_);
  std::vector<char> kept(static_cast<size_t>(head + keep));
  bool ok = ::pread(fd_, kept.data(), head, 0) == static_cast<ssize_t>(head) &&
            ::pread(fd_, kept.data() + head, keep, static_cast<off_t>(cut_to)) == static_cast<ssize_t>(keep);
  fs::path tmp = file_;
  tmp += ".trim";
  int out = ok ? ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600) : -1;
  std::string_view kept_view(kept.data(), kept.size());
  if (out >= 0 && ::flock(out, LOCK_EX) == 0 && try_write_all(out, kept_view.substr(0, head)) == 0 &&
      try_write_all(out, marker) == 0 && try_write_all(out, kept_view.substr(head)) == 0 &&
      ::rename(tmp.c_str(), file_.c_str()) == 0) {
    ::close(fd_);
    fd_ = out;
    size_ = head + marker.size() + keep;
    marker_len_ = marker.size();
    return;
  }
  if (out >= 0) {
    ::close(out);
    ::unlink(tmp.c_str());
  }
  // No room for a copy: keep the start and say so; the latest comes after.
  dropped_ += keep;
  marker = dropped_marker(dropped_, max_);
  if (::ftruncate(fd_, static_cast<off_t>(head)) == 0 && try_write_all(fd_, marker) == 0) {
    size_ = head + marker.size();
    marker_len_ = marker.size();
  }
}

int copy_to_capped_log(int in_fd, const fs::path& file, uint64_t max_bytes) {
  CappedLog log(file, max_bytes);
  char buf[65536];
  for (;;) {
    ssize_t n = read_some(in_fd, buf);
    if (n == 0) return 0;
    if (n < 0) return 1;
    log.write(std::string_view(buf, static_cast<size_t>(n)));
  }
}

std::optional<uint64_t> parse_log_max(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  int shift = unit.empty() ? 0 : unit == "K" || unit == "k" ? 10 : unit == "M" ? 20 : unit == "G" ? 30 : -1;
  if (shift < 0 || value > (UINT64_MAX >> 30)) return std::nullopt;
  value <<= shift;
  if (value < kMinConsoleLogMax) return std::nullopt;
  return value;
}

}  // namespace kestrel

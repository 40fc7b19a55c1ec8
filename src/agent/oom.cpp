#include "agent/oom.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <deque>

#include "proto/messages.hpp"
#include "util/error.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace kestrel::agent {

namespace {

// The number after `key` in `text` ("anon-rss:411648kB" → 411648).
std::optional<uint64_t> number_after(std::string_view text, std::string_view key) {
  size_t at = text.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(at + key.size());
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
  if (ec != std::errc() || end == rest.data()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<uint64_t> parse_oom_kill_count(std::string_view vmstat) {
  for (const auto& line : split(vmstat, '\n')) {
    std::string_view l = line;
    if (l.starts_with("oom_kill ")) return number_after(l, "oom_kill ");
  }
  return std::nullopt;
}

OomMark oom_mark(const std::string& vmstat) {
  OomMark mark = oom_mark_time();
  try {
    if (auto text = read_file_if_exists(vmstat)) mark.kills = parse_oom_kill_count(*text);
  } catch (const Error&) {
  }
  return mark;
}

OomMark oom_mark_time() {
  OomMark mark;
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  mark.usec = static_cast<uint64_t>(now.tv_sec) * 1000000 + static_cast<uint64_t>(now.tv_nsec) / 1000;
  return mark;
}

std::optional<std::string> describe_oom_kill(std::string_view line) {
  constexpr std::string_view kKilled = "of memory: Killed process ";
  size_t at = line.find(kKilled);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(at + kKilled.size());
  auto pid = number_after(rest, "");
  size_t open = rest.find(" (");
  size_t close = rest.find(") ", open == std::string_view::npos ? 0 : open);
  if (!pid || open == std::string_view::npos || close == std::string_view::npos) return std::nullopt;
  std::string name(rest.substr(open + 2, std::min<size_t>(close - open - 2, 64)));
  std::string out = fmt::format("process {} ({}", *pid, name);
  if (auto kb = number_after(rest, "anon-rss:")) out += fmt::format(", {} MiB resident", (*kb + 512) / 1024);
  return out + ")";
}

std::string oom_kills_since(const OomMark& before, const std::string& vmstat, const std::string& kmsg) {
  OomMark now = oom_mark(vmstat);
  uint64_t kills = 0;  // 0: as many as the log tells of since before.usec
  if (before.kills && now.kills) {
    if (*now.kills <= *before.kills) return "";
    kills = *now.kills - *before.kills;
  }
  if (!before.kills && now.kills && *now.kills == 0) return "";  // none since boot
  // Each read(2) of /dev/kmsg gives one record, "PRIO,SEQ,USEC,FLAGS;TEXT",
  // from the oldest kept on; EAGAIN at the end, EPIPE where records were
  // overwritten meanwhile (read on).
  std::deque<std::string> found;
  uint64_t seen = 0;
  UniqueFd fd(::open(kmsg.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  for (int records = 0; fd && records < 100000; ++records) {
    char buf[8192];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EPIPE)) continue;
    if (n <= 0) break;
    // A record's continuation lines (" KEY=VALUE") never match.
    for (const auto& line : split(std::string_view(buf, static_cast<size_t>(n)), '\n')) {
      auto kill = describe_oom_kill(line);
      if (!kill) continue;
      if (kills == 0) {
        // "PRIO,SEQ,USEC,...": the record's time.
        std::string_view fields = line;
        size_t second = fields.find(',');
        size_t third = second == std::string_view::npos ? second : fields.find(',', second + 1);
        auto usec = third == std::string_view::npos ? std::nullopt : number_after(fields.substr(third), ",");
        if (!usec || *usec < before.usec) continue;
      }
      ++seen;
      found.push_back(std::move(*kill));
      if (found.size() > 4) found.pop_front();
    }
  }
  if (kills == 0) kills = seen;  // no count: what the log tells of
  while (found.size() > kills) found.pop_front();
  std::string out;
  for (const auto& kill : found) out += (out.empty() ? "" : "; ") + kill;
  if (uint64_t untold = kills - found.size(); found.size() < kills)
    out += out.empty() ? fmt::format("{} process{}", untold, untold == 1 ? "" : "es")
                       : fmt::format(" and {} more", untold);
  return out.substr(0, proto::kMaxOomText);
}

}  // namespace kestrel::agent

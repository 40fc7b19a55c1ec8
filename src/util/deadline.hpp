// Deadline: every wait in kestrel has one. Built on the monotonic clock.
#pragma once

#include <chrono>
#include <climits>
#include <cstdint>

namespace kestrel {

// Seconds since the epoch (for state files and ages).
inline int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Seconds since `start` on the monotonic clock, for "done in 1.2 s" lines.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static Deadline never() { return Deadline(Clock::time_point::max()); }

  // Saturates: a span too long for the clock (a user's --timeout 1e16) is
  // never(), not a signed overflow into the past; zero or negative is now.
  static Deadline after(std::chrono::milliseconds d) {
    auto now = Clock::now();
    if (d <= std::chrono::milliseconds::zero()) return Deadline(now);
    if (d >= std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now)) return never();
    return Deadline(now + d);
  }
  // The same from a number of seconds that may be fractional, huge, NaN or
  // infinite (NaN and <= 0 are now, +inf and anything too long are never()).
  static Deadline after_seconds(double seconds) {
    if (!(seconds > 0)) return after(std::chrono::milliseconds::zero());
    // 2^62 ms is about 146 million years: beyond the clock's range anyway.
    constexpr double kLongest = 4.6e18;
    double ms = seconds * 1000.0;
    if (ms >= kLongest) return never();
    return after(std::chrono::milliseconds(static_cast<int64_t>(ms + 0.999)));  // rounded up
  }

  bool is_never() const { return at_ == Clock::time_point::max(); }
  bool expired() const { return !is_never() && Clock::now() >= at_; }
  Clock::time_point at() const { return at_; }

  // Milliseconds left, rounded up, suitable for poll(2): -1 means "forever".
  int poll_timeout_ms() const {
    if (is_never()) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(at_ - Clock::now()).count();
    if (left <= 0) return 0;
    return left > INT_MAX ? INT_MAX : static_cast<int>(left);
  }

  // The earlier of two deadlines.
  static Deadline earliest(Deadline a, Deadline b) { return a.at_ < b.at_ ? a : b; }

 private:
  explicit Deadline(Clock::time_point at) : at_(at) {}
  Clock::time_point at_;
};

}  // namespace kestrel

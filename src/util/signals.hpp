// SignalFd: blocks a set of signals for the process and delivers them on a
// file descriptor instead, so that an event loop can poll them with
// everything else. The previous mask is restored on destruction.
#pragma once

#include <signal.h>

#include <initializer_list>

#include "util/fd.hpp"

namespace kestrel {

class SignalFd {
 public:
  explicit SignalFd(std::initializer_list<int> signals);
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;
  ~SignalFd();

  int fd() const { return fd_.get(); }
  // Reads one pending signal without blocking; 0 if none.
  int take();
  // Waits up to `ms` for a signal; throws Interrupted if one arrives.
  // Signals in `ignored` (e.g. SIGWINCH) are consumed and waiting goes on.
  void sleep_or_throw(int ms, int ignored = 0);

 private:
  UniqueFd fd_;
  sigset_t old_mask_;
};

// Restores the default disposition of `sig` and raises it, so our exit status
// tells the truth about how we died (what shells expect after Ctrl-C).
[[noreturn]] void reraise(int sig);

}  // namespace kestrel

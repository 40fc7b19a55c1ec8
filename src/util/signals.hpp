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
  // sleep_or_throw(fd(), ms, ignored), below.
  void sleep_or_throw(int ms, int ignored = 0);

 private:
  UniqueFd fd_;
  sigset_t old_mask_;
};

// Waits up to `ms` for a signal on `signal_fd` (a non-blocking signalfd; -1:
// just sleeps) and throws Interrupted for the first pending one other than
// `ignored` (e.g. SIGWINCH), which is consumed. Returns early once a signal
// came, so callers that wait longer loop.
void sleep_or_throw(int signal_fd, int ms, int ignored = 0);

// Restores the default disposition of `sig` and raises it, so our exit status
// tells the truth about how we died (what shells expect after Ctrl-C).
[[noreturn]] void reraise(int sig);

}  // namespace kestrel

#include "util/signals.hpp"

#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "util/error.hpp"

namespace kestrel {

SignalFd::SignalFd(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, &old_mask_) != 0) fail_errno("sigprocmask");
  fd_ = UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd_) fail_errno("signalfd");
}

SignalFd::~SignalFd() {
  fd_.reset();
  ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

int SignalFd::take() {
  struct signalfd_siginfo si;
  if (::read(fd_.get(), &si, sizeof si) != sizeof si) return 0;
  return static_cast<int>(si.ssi_signo);
}

void SignalFd::sleep_or_throw(int ms, int ignored) { kestrel::sleep_or_throw(fd_.get(), ms, ignored); }

void sleep_or_throw(int signal_fd, int ms, int ignored) {
  if (signal_fd < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return;
  }
  struct pollfd p = {signal_fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return;
  struct signalfd_siginfo si;
  while (::read(signal_fd, &si, sizeof si) == sizeof si) {
    if (static_cast<int>(si.ssi_signo) != ignored) throw Interrupted(static_cast<int>(si.ssi_signo));
  }
}

void reraise(int sig) {
  ::signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(sig);
  std::_Exit(128 + sig);
}

}  // namespace kestrel

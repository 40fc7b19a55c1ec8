// The root shell on the serial console (docs/guest.md, boot step 5): /bin/sh
// with the console tty as its controlling terminal, moved into the guest root
// when SETUP mounts one.
//
// The shell starts on demand: while none runs, the agent watches the tty and
// starts one when input arrives (the shell then reads that input). A VM that
// nobody looks at never pays for a shell, which under emulation costs tens of
// milliseconds of a test's time, and a template's clones do not inherit one.
#pragma once

#include <sys/types.h>

#include <string>

#include "util/deadline.hpp"
#include "util/fd.hpp"

namespace kestrel::agent {

class Console {
 public:
  struct Options {
    std::string tty = "/dev/ttyS0";
    std::string shell = "/bin/sh";
  };

  explicit Console(Options options) : options_(std::move(options)) {}
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  // From now on shells run in root ("" for the initramfs); a running shell is
  // replaced by one there.
  void start(const std::string& root);
  // Called for every reaped child: true if it was one of ours.
  bool on_exit(pid_t pid);
  // The tty to poll for input while no shell runs; -1 otherwise.
  int input_fd();
  // Input arrived on input_fd(): start the shell that will read it.
  void on_input();
  // When tick() has work to do (a respawn); never() when none is due.
  Deadline deadline() const { return respawn_at_; }
  // While input waits after quick exits: when to look at the tty again.
  Deadline quiet_deadline() const { return quiet_until_.expired() ? Deadline::never() : quiet_until_; }
  void tick();

  pid_t pid() const { return pid_; }

 private:
  void spawn();

  Options options_;
  std::string root_;
  pid_t pid_ = -1;
  pid_t dying_ = -1;                         // a shell start() killed, until reaped
  UniqueFd watch_;                           // the tty, opened for polling while no shell runs
  Deadline started_at_ = Deadline::never();  // as a time point: when the shell started
  Deadline respawn_at_ = Deadline::never();
  Deadline quiet_until_ = Deadline::after(std::chrono::milliseconds(0));  // after quick exits: input waits
  int quick_exits_ = 0;
};

}  // namespace kestrel::agent

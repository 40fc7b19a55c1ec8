// The root shell on the serial console (docs/guest.md, boot step 5): /bin/sh
// with the console tty as its controlling terminal, restarted whenever it
// exits, and moved into the guest root when SETUP mounts one.
#pragma once

#include <sys/types.h>

#include <string>

#include "util/deadline.hpp"

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

  // Starts the shell in root ("" for the initramfs), killing the current one.
  void start(const std::string& root);
  // Called for every reaped child: true if it was the shell (and a new one is
  // scheduled).
  bool on_exit(pid_t pid);
  // When tick() has work to do (a respawn); never() when none is due.
  Deadline deadline() const { return respawn_at_; }
  void tick();

  pid_t pid() const { return pid_; }

 private:
  void spawn();

  Options options_;
  std::string root_;
  pid_t pid_ = -1;
  pid_t dying_ = -1;  // the shell start() killed, until reaped
  Deadline started_at_ = Deadline::never();  // as a time point: when the shell started
  Deadline respawn_at_ = Deadline::never();
  int quick_exits_ = 0;
};

}  // namespace kestrel::agent

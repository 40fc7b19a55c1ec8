// Running a long build step (mmdebstrap, mkfs) whose output is a log: every
// line goes to a log file and to a callback (progress), the last lines are
// kept for an error message, and a signal on the run's signalfd stops it.
#pragma once

#include <deque>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "util/deadline.hpp"

namespace kestrel::image {

struct LoggedResult {
  int status = 0;                // as a shell reports it
  std::deque<std::string> tail;  // the last lines of its output (stdout and stderr together)
  std::string tail_text(size_t lines) const;
};

struct LoggedCommand {
  std::vector<std::string> argv;
  std::filesystem::path log;                             // appended to; empty: none
  std::function<void(const std::string& line)> on_line;  // each line as it comes
  int signal_fd = -1;  // a signal there kills the command's process group and throws Interrupted
  Deadline deadline = Deadline::never();
};

// Runs the command to its end (stdin /dev/null, LC_ALL=C). Throws Error if it
// cannot start or runs past its deadline (it is killed then).
LoggedResult run_logged(const LoggedCommand& command);

}  // namespace kestrel::image

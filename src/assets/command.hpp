// Running a helper program (apt-get, apt-cache, busybox) to completion and
// capturing what it prints.
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "util/deadline.hpp"

namespace kestrel::assets {

struct CommandResult {
  int status = 0;   // as a shell reports it: exit code, or 128+N for signal N
  std::string out;  // stdout
  std::string err;  // stderr
};

// Our environment with LC_ALL=C (and no LANGUAGE): helpers whose output we
// parse speak English.
std::vector<std::string> c_locale_environment();

// Runs argv with stdin from /dev/null and LC_ALL=C (we parse the output),
// in cwd if given. Throws Error if it cannot be started or the deadline
// passes (the program is killed then). A non-zero exit is not an error here.
CommandResult run_command(const std::vector<std::string>& argv, const std::filesystem::path& cwd, Deadline deadline);

// A long step whose output is a stream of lines (a kernel's make, apt-get
// download, an image's mmdebstrap and mkfs): each line goes to a log file and
// to a callback as it comes, the last lines are kept for an error message,
// and a signal on `signal_fd` stops it (SIGTERM to its process group, SIGKILL
// after `stop_grace`) and throws Interrupted. stdin is /dev/null, stdout and
// stderr are one stream.
struct StreamedCommand {
  std::vector<std::string> argv;
  std::filesystem::path cwd;                             // empty: ours
  std::vector<std::string> env;                          // empty: c_locale_environment()
  std::filesystem::path log;                             // appended to; empty: none
  std::function<void(const std::string& line)> on_line;  // each line as it comes
  int signal_fd = -1;                                    // a non-blocking signalfd, or -1
  Deadline deadline = Deadline::never();
  std::string name;  // what error messages call it; empty: the whole command line
  // How long SIGTERM has to work before SIGKILL: make removes half-written
  // targets quickly, mmdebstrap has mounts to undo and a tree to remove.
  std::chrono::seconds stop_grace = std::chrono::seconds(10);
  // Everything it starts ends with it (SpawnOptions::contain: a PID and
  // mount namespace of its own when we are root; its process group
  // otherwise): for builds that run as root and start daemons.
  bool contain = false;
};

struct StreamedResult {
  int status = 0;                // as a shell reports it
  std::deque<std::string> tail;  // the last 40 lines of its output
  // The last `lines` of them, one per line.
  std::string tail_text(size_t lines) const;
};

// Runs the command to its end. Throws Error if it cannot start or runs past
// its deadline (it is stopped then), Interrupted on a signal; a non-zero exit
// is not an error here.
StreamedResult run_streamed(const StreamedCommand& command);

// "apt-get: E: …" style summary of a failed command for an error message:
// its last non-empty stderr lines (or stdout, if stderr is empty).
std::string command_failure(const std::vector<std::string>& argv, const CommandResult& result);

}  // namespace kestrel::assets

// Running a helper program (apt-get, apt-cache, busybox) to completion and
// capturing what it prints.
#pragma once

#include <filesystem>
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

// "apt-get: E: …" style summary of a failed command for an error message:
// its last non-empty stderr lines (or stdout, if stderr is empty).
std::string command_failure(const std::vector<std::string>& argv, const CommandResult& result);

}  // namespace kestrel::assets

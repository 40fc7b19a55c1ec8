// The program a run starts, found and checked on the host before any VM
// boots (the guest sees the same file at the same path): the command line's
// `kestrel run` and the API's run() alike.
#pragma once

#include <filesystem>
#include <string>

#include "util/error.hpp"

namespace kestrel::host {

// The program cannot be run: 126 or 127, as a shell would say.
class ProgramError : public Error {
 public:
  ProgramError(int status, const std::string& message) : Error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// The program to run, as the command names it: a path, or a name found in
// PATH; checked on the host (a FIFO or a directory fails here, at once).
// Throws ProgramError: 127 if it is not found, 126 if it cannot be executed.
std::filesystem::path resolve_program(const std::string& program);

}  // namespace kestrel::host

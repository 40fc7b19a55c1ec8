// Error policy: library code throws kestrel::Error with a message that names
// the operation, the object and the cause (strerror for system calls). Only
// the mains catch it and turn it into "kestrel: error: ..." and an exit code.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace kestrel {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A wait was cut short by a signal the user sent (SIGINT, SIGTERM, ...).
class Interrupted : public Error {
 public:
  explicit Interrupted(int signo) : Error("interrupted by signal " + std::to_string(signo)), signo_(signo) {}
  int signo() const { return signo_; }

 private:
  int signo_;
};

// Error for a failed system call: "<what>: <strerror(err)>".
Error sys_error(int err, const std::string& what);

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// Throws sys_error(errno, ...) with a formatted description.
template <typename... Args>
[[noreturn]] void fail_errno(fmt::format_string<Args...> format, Args&&... args) {
  int err = errno;
  throw sys_error(err, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace kestrel

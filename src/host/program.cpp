#include "host/program.hpp"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "util/strings.hpp"

namespace kestrel::host {

namespace fs = std::filesystem;

namespace {

constexpr int kNotFound = 127, kCannotExec = 126;

fs::path check_program(const fs::path& path, const std::string& given) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    throw ProgramError(err == ENOENT || err == ENOTDIR ? kNotFound : kCannotExec,
                       fmt::format("cannot run {}: {}", given, strerror(err)));
  }
  if (S_ISDIR(st.st_mode)) throw ProgramError(kCannotExec, fmt::format("cannot run {}: is a directory", given));
  if (!S_ISREG(st.st_mode)) throw ProgramError(kCannotExec, fmt::format("cannot run {}: not a regular file", given));
  if (::access(path.c_str(), X_OK) != 0 || (st.st_mode & 0111) == 0)
    throw ProgramError(kCannotExec, fmt::format("cannot run {}: {}", given, strerror(EACCES)));
  return fs::absolute(path).lexically_normal();
}

}  // namespace

fs::path resolve_program(const std::string& program) {
  if (program.empty()) throw ProgramError(kNotFound, "cannot run '': No such file or directory");
  if (program.find('/') != std::string::npos) return check_program(program, program);
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path ? path : "/usr/bin:/bin", ':')) {
    fs::path candidate = fs::path(dir.empty() ? "." : dir) / program;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return check_program(candidate, program);
  }
  throw ProgramError(kNotFound, fmt::format("cannot run {}: not found in PATH", program));
}

}  // namespace kestrel::host

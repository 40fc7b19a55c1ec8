#include "util/lockfile.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>
#include <thread>

#include "util/error.hpp"

namespace kestrel {

namespace {

UniqueFd open_lock(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) fail_errno("cannot open lock file {}", path.string());
  return fd;
}

bool flock_nb(int fd, LockFile::Mode mode, const std::filesystem::path& path) {
  int op = (mode == LockFile::Mode::kShared ? LOCK_SH : LOCK_EX) | LOCK_NB;
  for (;;) {
    if (::flock(fd, op) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return false;
    fail_errno("cannot lock {}", path.string());
  }
}

}  // namespace

LockFile LockFile::try_lock(const std::filesystem::path& path, Mode mode) {
  UniqueFd fd = open_lock(path);
  if (!flock_nb(fd.get(), mode, path)) return LockFile();
  return LockFile(std::move(fd));
}

LockFile LockFile::lock(const std::filesystem::path& path, Deadline deadline, Mode mode) {
  UniqueFd fd = open_lock(path);
  if (deadline.is_never()) {
    // Sleep in the kernel until the holder lets go: no polling.
    int op = mode == Mode::kShared ? LOCK_SH : LOCK_EX;
    while (::flock(fd.get(), op) != 0) {
      if (errno != EINTR) fail_errno("cannot lock {}", path.string());
    }
    return LockFile(std::move(fd));
  }
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    if (flock_nb(fd.get(), mode, path)) return LockFile(std::move(fd));
    if (deadline.expired()) return LockFile();
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

bool is_locked(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;
  return errno == EWOULDBLOCK;
}

}  // namespace kestrel

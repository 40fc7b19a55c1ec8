#include "util/lockfile.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

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

// True if `path` still names the file open on `fd`. A lock file may be
// unlinked by its holder (remove_locked); whoever was waiting on it then
// holds a lock on a file nobody else can find, and must take the new one.
bool still_named(int fd, const std::filesystem::path& path) {
  struct stat open_st, path_st;
  if (::fstat(fd, &open_st) != 0) fail_errno("cannot stat lock file {}", path.string());
  if (::stat(path.c_str(), &path_st) != 0) {
    if (errno == ENOENT) return false;
    fail_errno("cannot stat lock file {}", path.string());
  }
  return open_st.st_dev == path_st.st_dev && open_st.st_ino == path_st.st_ino;
}

}  // namespace

LockFile LockFile::try_lock(const std::filesystem::path& path, Mode mode) {
  for (;;) {
    UniqueFd fd = open_lock(path);
    if (!flock_nb(fd.get(), mode, path)) return LockFile();
    if (still_named(fd.get(), path)) return LockFile(std::move(fd));
  }
}

void LockFile::remove_locked(const std::filesystem::path& path) {
  if (!locked()) fail("cannot remove lock file {}: not locked", path.string());
  if (!still_named(fd_.get(), path)) return;
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) fail_errno("cannot remove lock file {}", path.string());
}

LockFile LockFile::lock(const std::filesystem::path& path, Deadline deadline, Mode mode) {
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    UniqueFd fd = open_lock(path);
    if (deadline.is_never()) {
      // Sleep in the kernel until the holder lets go: no polling.
      int op = mode == Mode::kShared ? LOCK_SH : LOCK_EX;
      while (::flock(fd.get(), op) != 0) {
        if (errno != EINTR) fail_errno("cannot lock {}", path.string());
      }
    } else {
      while (!flock_nb(fd.get(), mode, path)) {
        if (deadline.expired()) return LockFile();
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(20));
      }
    }
    if (still_named(fd.get(), path)) return LockFile(std::move(fd));
  }
}

LockFile LockFile::lock_existing(const std::filesystem::path& path, Deadline deadline, Mode mode) {
  auto pause = std::chrono::milliseconds(1);
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT) return LockFile();
      fail_errno("cannot open {}", path.string());
    }
    while (!flock_nb(fd.get(), mode, path)) {
      if (deadline.expired()) return LockFile();
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(20));
    }
    if (still_named(fd.get(), path)) return LockFile(std::move(fd));
    // Removed (or replaced) while we waited: try the file it names now, if any.
  }
}

LockFile LockFile::lock_fd(UniqueFd fd, Mode mode, const std::filesystem::path& what) {
  if (!flock_nb(fd.get(), mode, what)) fail("cannot lock {}: held by another process", what.string());
  return LockFile(std::move(fd));
}

bool is_locked(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;
  return errno == EWOULDBLOCK;
}

}  // namespace kestrel

// LockFile: an flock(2) on a file, released when the owner dies (or the
// process that holds it does: the kernel drops flocks of dead processes,
// which is what makes them reliable liveness markers).
#pragma once

#include <filesystem>

#include "util/deadline.hpp"
#include "util/fd.hpp"

namespace kestrel {

class LockFile {
 public:
  enum class Mode { kShared, kExclusive };

  LockFile() = default;
  // Tries once; returns an unlocked LockFile (locked() == false) if it is held.
  // Both calls return a lock on the file `path` names when they return: one
  // taken on a file that was removed meanwhile is dropped and taken again.
  static LockFile try_lock(const std::filesystem::path& path, Mode mode = Mode::kExclusive);
  // Waits until the deadline; returns an unlocked LockFile on timeout.
  static LockFile lock(const std::filesystem::path& path, Deadline deadline, Mode mode = Mode::kExclusive);
  // A lock on an existing file or directory (opened read-only, never
  // created): how a cache entry is marked "in use" (shared) or claimed for
  // removal (exclusive). Waits until the deadline (an expired one: tries
  // once); unlocked if `path` is missing, stays held, or was removed.
  static LockFile lock_existing(const std::filesystem::path& path, Deadline deadline, Mode mode);
  // Locks a file this process just made (e.g. before renaming it into place:
  // the lock follows the file). Throws if someone else holds it.
  static LockFile lock_fd(UniqueFd fd, Mode mode, const std::filesystem::path& what);

  bool locked() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  void unlock() { fd_.reset(); }
  // Removes the lock file `path` (this lock's) while holding it, so that lock
  // files do not pile up; waiters notice and lock the next file of that name.
  void remove_locked(const std::filesystem::path& path);

 private:
  explicit LockFile(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// True if someone holds a lock on path (tested with a non-blocking shared lock
// attempt for exclusive holders). A missing file counts as unlocked.
bool is_locked(const std::filesystem::path& path);

}  // namespace kestrel

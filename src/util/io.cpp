#include "util/io.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "util/error.hpp"

namespace kestrel {

int try_write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      int err = errno;  // now: whatever runs next may change errno
      if (err == EINTR) continue;
      return err;
    }
    // A short write is retried: the next call reports the real cause (a full
    // disk: ENOSPC). One that writes nothing at all would loop forever.
    if (n == 0) return ENOSPC;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

void write_all(int fd, std::string_view data, const char* what) {
  if (int err = try_write_all(fd, data)) throw sys_error(err, fmt::format("cannot write to {}", what));
}

ssize_t read_some(int fd, std::span<char> buffer) {
  for (;;) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

void set_nonblocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) fail_errno("fcntl(F_GETFL) on fd {}", fd);
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) < 0) fail_errno("fcntl(F_SETFL) on fd {}", fd);
}

void set_cloexec(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFD);
  if (flags < 0) fail_errno("fcntl(F_GETFD) on fd {}", fd);
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (::fcntl(fd, F_SETFD, flags) < 0) fail_errno("fcntl(F_SETFD) on fd {}", fd);
}

}  // namespace kestrel

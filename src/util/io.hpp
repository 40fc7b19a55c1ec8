// Small, EINTR-safe wrappers around read/write.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace kestrel {

// Writes all of data to fd (blocking fds; retries on EINTR and short writes).
// Throws Error naming `what` on failure.
void write_all(int fd, std::string_view data, const char* what);

// Like write_all but returns errno (0 on success) instead of throwing;
// used where a failure is expected and handled, e.g. a closed pipe. Reports
// the errno of the call that failed, ENOSPC for one that wrote nothing:
// never a stale errno from an earlier call.
int try_write_all(int fd, std::string_view data);

// One read(2), retried on EINTR. Returns bytes read, 0 at EOF, -1 with errno set.
ssize_t read_some(int fd, std::span<char> buffer);

// Sets or clears O_NONBLOCK; throws on failure.
void set_nonblocking(int fd, bool on);
// Sets FD_CLOEXEC; throws on failure.
void set_cloexec(int fd, bool on);

}  // namespace kestrel

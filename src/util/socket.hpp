// Unix-domain stream sockets.
#pragma once

#include <filesystem>

#include "util/deadline.hpp"
#include "util/fd.hpp"

namespace kestrel {

// Maximum length of a socket path (sun_path less the terminating NUL).
constexpr size_t kMaxSocketPath = 107;

// Connects to a listening socket. Returns an invalid fd if nobody listens
// there (ENOENT/ECONNREFUSED); throws on other errors. The fd is CLOEXEC.
UniqueFd unix_connect(const std::filesystem::path& path);

// Throws, naming the path and the limit, if `path` is too long for a socket.
void check_socket_path(const std::filesystem::path& path);

// Retries unix_connect until it succeeds or the deadline passes (then throws).
UniqueFd unix_connect_retry(const std::filesystem::path& path, Deadline deadline);

// Binds and listens; removes a stale socket file first. CLOEXEC.
UniqueFd unix_listen(const std::filesystem::path& path, int backlog = 16);

}  // namespace kestrel

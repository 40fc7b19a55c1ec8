#include "util/socket.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "util/error.hpp"

namespace kestrel {

namespace {

sockaddr_un make_address(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& s = path.native();
  check_socket_path(path);
  std::memcpy(addr.sun_path, s.c_str(), s.size() + 1);
  return addr;
}

}  // namespace

void check_socket_path(const std::filesystem::path& path) {
  const std::string& s = path.native();
  if (s.size() > kMaxSocketPath)
    fail("socket path {} is {} bytes long; the limit is {} (use a shorter KESTREL_RUNTIME_DIR)", s, s.size(),
         kMaxSocketPath);
}

UniqueFd unix_connect(const std::filesystem::path& path) {
  sockaddr_un addr = make_address(path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) fail_errno("socket(AF_UNIX)");
  int r;
  do {
    r = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return fd;
  if (errno == ENOENT || errno == ECONNREFUSED) return UniqueFd();
  fail_errno("cannot connect to {}", path.string());
}

UniqueFd unix_connect_retry(const std::filesystem::path& path, Deadline deadline) {
  for (;;) {
    if (auto fd = unix_connect(path)) return fd;
    if (deadline.expired()) fail("cannot connect to {}: nobody listens there", path.string());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

UniqueFd unix_listen(const std::filesystem::path& path, int backlog) {
  sockaddr_un addr = make_address(path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) fail_errno("socket(AF_UNIX)");
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    fail_errno("cannot bind {}", path.string());
  if (::listen(fd.get(), backlog) != 0) fail_errno("cannot listen on {}", path.string());
  return fd;
}

}  // namespace kestrel

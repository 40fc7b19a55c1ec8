#include "vm/qmp.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "util/error.hpp"
#include "util/io.hpp"
#include "util/json.hpp"
#include "util/process.hpp"
#include "util/socket.hpp"

namespace kestrel::vm {

namespace {}  // namespace

Qmp Qmp::connect(const std::filesystem::path& socket, Deadline deadline, int vm_pidfd) {
  Qmp q;
  q.socket_ = socket;
  q.vm_pidfd_ = vm_pidfd;
  // QEMU creates the socket early in its start-up; until then, retry.
  for (;;) {
    q.fd_ = unix_connect(socket);
    if (q.fd_) break;
    if (has_exited(vm_pidfd)) fail("QEMU exited before its monitor {} came up", socket.string());
    if (deadline.expired()) fail("QEMU's monitor {} did not come up in time", socket.string());
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  set_nonblocking(q.fd_.get(), true);
  nlohmann::json greeting = q.read_message(deadline, "the QMP greeting");
  if (!greeting.contains("QMP"))
    fail("{} is not a QMP monitor: it greeted with {}", socket.string(), dump_json(greeting));
  q.execute("qmp_capabilities", deadline);
  return q;
}

nlohmann::json Qmp::execute(std::string_view command, const nlohmann::json& arguments, Deadline deadline) {
  nlohmann::json request = {{"execute", command}};
  if (!arguments.empty()) request["arguments"] = arguments;
  std::string line = dump_json(request) + "\n";
  // The socket is non-blocking, but a command is tiny next to its buffer.
  if (int err = try_write_all(fd_.get(), line))
    throw sys_error(err, "cannot send " + std::string(command) + " to QEMU");
  return await_reply(command, deadline);
}

void Qmp::pass_fd(const std::string& name, int fd, Deadline deadline) {
  std::string line = dump_json(nlohmann::json({{"execute", "getfd"}, {"arguments", {{"fdname", name}}}})) + "\n";
  struct iovec iov = {line.data(), line.size()};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
  ssize_t n;
  do {
    n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(line.size()))
    fail_errno("cannot pass a descriptor to QEMU through {}", socket_.string());
  await_reply("getfd", deadline);
}

nlohmann::json Qmp::await_reply(std::string_view command, Deadline deadline) {
  for (;;) {
    nlohmann::json reply = read_message(deadline, command);
    if (reply.contains("return")) return reply["return"];
    if (reply.contains("error")) {
      const auto& e = reply["error"];
      fail("QEMU refused {}: {}", command, e.value("desc", dump_json(e)));
    }
    // Anything else is an asynchronous event: not ours to handle here.
  }
}

nlohmann::json Qmp::read_message(Deadline deadline, std::string_view waiting_for) {
  for (;;) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      auto message = parse_json(line);
      if (message.is_discarded() || !message.is_object())
        fail("QEMU sent a malformed QMP message while we waited for {}: {}", waiting_for, line);
      return message;
    }
    struct pollfd p[2] = {{fd_.get(), POLLIN, 0}, {vm_pidfd_, POLLIN, 0}};
    int r = ::poll(p, vm_pidfd_ >= 0 ? 2 : 1, deadline.poll_timeout_ms());
    if (r < 0 && errno != EINTR) fail_errno("poll");
    if (r == 0 && deadline.expired()) fail("QEMU did not answer {} in time", waiting_for);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      ssize_t n = read_some(fd_.get(), buf);
      if (n > 0) {
        buffer_.append(buf, static_cast<size_t>(n));
        if (buffer_.size() > (16u << 20)) fail("QEMU's QMP message is too long");
        continue;
      }
      if (n < 0 && errno == EAGAIN) continue;
      fail("QEMU closed its monitor {} while we waited for {}", socket_.string(), waiting_for);
    }
    if (vm_pidfd_ >= 0 && (p[1].revents & POLLIN)) fail("QEMU exited while we waited for {}", waiting_for);
  }
}

}  // namespace kestrel::vm

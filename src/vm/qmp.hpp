// A client for QEMU's machine protocol (QMP): JSON lines over the VM's unix
// socket. Used for what the command line cannot do: saving a VM as a
// template and restoring a clone of it (docs/warm-starts.md).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/deadline.hpp"
#include "util/fd.hpp"

namespace kestrel::vm {

class Qmp {
 public:
  // Connects (retrying while QEMU starts up), reads the greeting and
  // negotiates capabilities. Throws Error at the deadline, or if `vm_pidfd`
  // (optional) shows that QEMU exited.
  static Qmp connect(const std::filesystem::path& socket, Deadline deadline, int vm_pidfd = -1);

  // Runs one command and returns its "return" value. Throws Error naming the
  // command and QEMU's description when QEMU answers with an error.
  nlohmann::json execute(std::string_view command, const nlohmann::json& arguments, Deadline deadline);
  nlohmann::json execute(std::string_view command, Deadline deadline) {
    return execute(command, nlohmann::json::object(), deadline);
  }
  // Hands QEMU a descriptor (SCM_RIGHTS with the `getfd` command), which
  // later commands name as `name` (e.g. "fd:name" for a migration target).
  void pass_fd(const std::string& name, int fd, Deadline deadline);

 private:
  Qmp() = default;
  // The next JSON object QEMU sends; events are skipped by the callers.
  nlohmann::json read_message(Deadline deadline, std::string_view waiting_for);
  nlohmann::json await_reply(std::string_view command, Deadline deadline);

  UniqueFd fd_;
  int vm_pidfd_ = -1;
  std::string buffer_;
  std::filesystem::path socket_;
};

}  // namespace kestrel::vm

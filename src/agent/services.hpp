// SERVICE (docs/protocol.md, "Services"; docs/guest.md, "Services"): a
// long-running program started in the guest root and waited for until it is
// ready, so that a warm-start template is saved with it running.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proto/messages.hpp"

namespace kestrel::agent {

// Where service logs go, inside the guest root: NAME.log.
constexpr const char* kServiceLogDir = "/run/kestrel/services";

// The whole environment of a service and of its readiness command.
const std::vector<std::string>& service_environment();

// Starts the service in `root` ("" for the agent's own root), its output
// appended to `log_dir`/NAME.log (a path inside that root), and waits until
// it is ready or request.timeout_ms has passed. Reaps only its own processes
// (waitpid by pid): other children are the caller's. The service keeps
// running on success. Throws Error with the message for the host's ERROR,
// carrying the last lines of the service's log where it ran.
void run_service(const proto::ServiceRequest& request, const std::string& root,
                 const std::string& log_dir = kServiceLogDir);

// The last `count` lines of `text` (a trailing newline ends the last line).
std::string last_lines(std::string_view text, size_t count);

}  // namespace kestrel::agent

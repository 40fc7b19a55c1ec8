// Agent logging. PID 1 has no terminal of its own: messages go to the kernel
// console (/dev/console, i.e. the serial line kestrel records as
// console.log), which shows them whatever the console log level (`quiet`).
// Outside of PID 1 (tests, manual runs) they go to stderr.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace kestrel::agent {

// Where log lines go from now on (not owned; -1 silences the log).
void set_log_fd(int fd);
void set_debug(bool on);
bool debug_enabled();

// "kestrel-agent: error: <message>"
void log_error(std::string_view message);
// "kestrel-agent: <message>": the milestone every console log shows (ready
// at boot). The host notes what it knows itself (host::note_on_console):
// a clone's setup line would cost milliseconds of emulated serial output.
void log_note(std::string_view message);
// "kestrel-agent: [  1.234567] <message>", only with kestrel.debug=1.
void log_debug_line(std::string_view message);

template <typename... Args>
void log_errorf(fmt::format_string<Args...> format, Args&&... args) {
  log_error(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void notef(fmt::format_string<Args...> format, Args&&... args) {
  log_note(fmt::format(format, std::forward<Args>(args)...));
}

template <typename... Args>
void debugf(fmt::format_string<Args...> format, Args&&... args) {
  if (debug_enabled()) log_debug_line(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace kestrel::agent

#include "agent/log.hpp"

#include <time.h>
#include <unistd.h>

#include "util/io.hpp"

namespace kestrel::agent {

namespace {

int g_log_fd = STDERR_FILENO;
bool g_debug = false;

void emit(std::string line) {
  if (g_log_fd < 0) return;
  line += '\n';
  // The console may be slow or gone; a lost log line must never stop PID 1,
  // so errors are ignored here.
  (void)try_write_all(g_log_fd, line);
}

}  // namespace

void set_log_fd(int fd) { g_log_fd = fd; }
void set_debug(bool on) { g_debug = on; }
bool debug_enabled() { return g_debug; }

void log_error(std::string_view message) { emit(fmt::format("kestrel-agent: error: {}", message)); }

void log_note(std::string_view message) { emit(fmt::format("kestrel-agent: {}", message)); }

void log_debug_line(std::string_view message) {
  // CLOCK_MONOTONIC counts from boot, like the kernel's own timestamps.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  emit(fmt::format("kestrel-agent: [{:5}.{:06}] {}", ts.tv_sec, ts.tv_nsec / 1000, message));
}

}  // namespace kestrel::agent

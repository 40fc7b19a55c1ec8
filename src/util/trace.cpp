#include "util/trace.hpp"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "util/fs.hpp"

namespace kestrel {

namespace {

// The process's start on CLOCK_MONOTONIC's scale (ms), from /proc/self/stat
// (field 22, in clock ticks since boot), so that the dynamic loader and static
// initializers are counted too.
double process_start_ms() {
  auto stat = read_file_if_exists("/proc/self/stat");
  if (!stat) return 0;
  auto close = stat->rfind(')');
  if (close == std::string::npos) return 0;
  // Fields after the command name start at field 3.
  const char* p = stat->c_str() + close + 2;
  for (int field = 3; field < 22 && *p; ++field) {
    while (*p && *p != ' ') ++p;
    while (*p == ' ') ++p;
  }
  return static_cast<double>(std::strtoull(p, nullptr, 10)) * 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double boottime_ms() {
  struct timespec ts;
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

}  // namespace

bool tracing() {
  static const bool on = [] {
    const char* v = std::getenv("KESTREL_TRACE");
    return v && *v && std::string_view(v) != "0";
  }();
  return on;
}

void trace(std::string_view what) {
  if (!tracing()) return;
  static const double start = process_start_ms();
  std::string line = "kestrel: trace " + std::to_string(boottime_ms() - start);
  line.resize(line.find('.') + 2);  // one decimal
  line += " ms  ";
  line += what;
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace kestrel

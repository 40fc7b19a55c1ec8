#include "host/vm_exit.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "util/error.hpp"
#include "util/fd.hpp"
#include "vm/qemu.hpp"

namespace kestrel::host {

namespace {

constexpr std::string_view kPanicMarker = "Kernel panic - not syncing: ";
// A panic's first line is within the last few KiB of the log: the stack
// trace after it is short, and QEMU exits right after (panic=-1, -no-reboot).
constexpr off_t kTailBytes = 64 * 1024;

std::string read_tail(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return {};
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0) return {};
  off_t from = size > kTailBytes ? size - kTailBytes : 0;
  std::string out(static_cast<size_t>(size - from), '\0');
  ssize_t n = ::pread(fd.get(), out.data(), out.size(), from);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

}  // namespace

std::optional<std::string> find_panic(std::string_view text) {
  size_t at = text.rfind(kPanicMarker);
  if (at == std::string_view::npos) return std::nullopt;
  // "---[ end Kernel panic - not syncing: X ]---" repeats the first line.
  std::string_view rest = text.substr(at + kPanicMarker.size());
  std::string_view reason = rest.substr(0, rest.find_first_of("\r\n"));
  if (reason.ends_with(" ]---")) reason.remove_suffix(5);
  while (!reason.empty() && reason.back() == ' ') reason.remove_suffix(1);
  return std::string(reason);
}

bool killed_from_outside(std::optional<int> wait_status) {
  if (!wait_status || !WIFSIGNALED(*wait_status)) return false;
  switch (WTERMSIG(*wait_status)) {
    case SIGKILL:
    case SIGTERM:
    case SIGINT:
    case SIGHUP:
      return true;
    default:  // SIGABRT, SIGSEGV, ...: QEMU itself gave up
      return false;
  }
}

std::string explain_vm_exit(const vm::VmPaths& paths, std::optional<int> wait_status) {
  vm::settle_console_log(paths, Deadline::after(std::chrono::seconds(1)));
  if (auto reason = find_panic(read_tail(paths.console_log()))) return "the guest kernel panicked (" + *reason + ")";
  if (!wait_status) return "QEMU exited";
  int s = *wait_status;
  if (WIFSIGNALED(s)) {
    const char* abbrev = sigabbrev_np(WTERMSIG(s));
    return fmt::format("QEMU was killed by signal {}{}", WTERMSIG(s),
                       abbrev ? fmt::format(" (SIG{})", abbrev) : std::string());
  }
  if (WIFEXITED(s)) return fmt::format("QEMU exited with status {}", WEXITSTATUS(s));
  return "QEMU exited";
}

std::string describe_oom(const std::string& oom, uint32_t mem_mib) {
  std::string more = "--mem MIB (config key memory, KESTREL_MEMORY)";
  if (mem_mib == 0)
    return fmt::format("the guest ran out of memory: its OOM killer ended {}; a VM gets more memory when it starts: {}",
                       oom, more);
  return fmt::format("the guest ran out of memory: its OOM killer ended {}; the VM has {} MiB, give it more with {}",
                     oom, mem_mib, more);
}

}  // namespace kestrel::host

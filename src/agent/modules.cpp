#include "agent/modules.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent/log.hpp"
#include "util/fd.hpp"
#include "util/fs.hpp"
#include "util/strings.hpp"

namespace kestrel::agent {

std::vector<std::string> parse_load_order(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& line : split(text, '\n')) {
    std::string_view name = trim(line);
    if (name.empty() || name[0] == '#') continue;
    out.emplace_back(name);
  }
  return out;
}

std::vector<std::string> load_module_list(const std::string& dir, const std::string& list) {
  std::vector<std::string> failures;
  auto failed = [&](std::string message) {
    log_error(message);
    failures.push_back(std::move(message));
  };
  std::optional<std::string> order;
  try {
    order = read_file_if_exists(dir + "/" + list);
  } catch (const std::exception& e) {
    failed(e.what());
    return failures;
  }
  if (!order) return failures;
  for (const auto& name : parse_load_order(*order)) {
    std::string path = dir + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      failed(fmt::format("cannot open module {}: {}", path, std::strerror(errno)));
      continue;
    }
    if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST) {
      failed(fmt::format("cannot load module {}: {}", name, std::strerror(errno)));
      continue;
    }
    debugf("loaded {}", name);
  }
  return failures;
}

int load_modules(const std::string& dir) { return static_cast<int>(load_module_list(dir, "load.order").size()); }

}  // namespace kestrel::agent

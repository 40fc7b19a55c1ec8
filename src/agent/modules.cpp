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

int load_modules(const std::string& dir) {
  std::optional<std::string> order;
  try {
    order = read_file_if_exists(dir + "/load.order");
  } catch (const std::exception& e) {
    log_error(e.what());
    return 1;
  }
  if (!order) return 0;
  int failed = 0;
  for (const auto& name : parse_load_order(*order)) {
    std::string path = dir + "/" + name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      log_errorf("cannot open module {}: {}", path, std::strerror(errno));
      ++failed;
      continue;
    }
    if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST) {
      log_errorf("cannot load module {}: {}", name, std::strerror(errno));
      ++failed;
      continue;
    }
    debugf("loaded {}", name);
  }
  return failed;
}

}  // namespace kestrel::agent

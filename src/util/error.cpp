#include "util/error.hpp"

#include <cstring>

namespace kestrel {

Error sys_error(int err, const std::string& what) { return Error(what + ": " + std::strerror(err)); }

}  // namespace kestrel

#pragma once

#include <cstddef>
#include <string>

namespace kestrel {

// Bytes from getrandom(2).
std::string random_bytes(size_t n);
// n random lowercase hex digits.
std::string random_hex(size_t n);

}  // namespace kestrel

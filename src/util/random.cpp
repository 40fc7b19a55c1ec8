#include "util/random.hpp"

#include <sys/random.h>

#include <cerrno>

#include "util/error.hpp"

namespace kestrel {

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::getrandom(out.data() + done, n - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) fail_errno("getrandom");
    done += static_cast<size_t>(got);
  }
  return out;
}

std::string random_hex(size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string bytes = random_bytes((n + 1) / 2);
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  out.resize(n);
  return out;
}

}  // namespace kestrel

// Helpers shared by the unit tests.
#pragma once

#include <string>
#include <utility>

#include "util/error.hpp"

namespace kestrel::test {

// The message of the kestrel::Error that f() throws, or "" if it throws none.
template <class F>
std::string error_message(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace kestrel::test

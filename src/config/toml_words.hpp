// How the TOML readers (config/file.cpp, image/recipe.cpp) name what they
// found in their messages.
#pragma once

#include <toml++/toml.h>

namespace kestrel::config {

// The line a TOML node starts on.
inline int line_of(const toml::source_region& r) { return static_cast<int>(r.begin.line); }

// "a list", "a string", ...: a TOML type in an error message.
inline const char* toml_type_name(toml::node_type t) {
  switch (t) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "a list";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a number";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

}  // namespace kestrel::config

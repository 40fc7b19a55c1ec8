// How the TOML readers (config/file.cpp, image/recipe.cpp,
// topology/spec.cpp) name what they found in their messages.
#pragma once

#include <toml++/toml.h>

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// A table's entries in the order they appear in the file (toml++ keeps them
// sorted by key), so that the first error reported is the first one a reader
// meets.
std::vector<std::pair<const toml::key*, const toml::node*>> in_file_order(const toml::table& table);

// The message for a key a reader does not know, without "PATH:LINE: ":
//   unknown key 'pacakges' (did you mean 'packages'?); the keys are: name, packages, ...
// `where` follows the key (" in [[service]]", or "" at the top level). Inside
// a table, a key of `top_level` gets the hint that it belongs before the
// first [table] instead of a suggestion.
std::string unknown_key_message(std::string_view key, std::span<const std::string_view> known, std::string_view where,
                                std::span<const std::string_view> top_level);

}  // namespace kestrel::config
